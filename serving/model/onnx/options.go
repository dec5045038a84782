// Package onnx runs ONNX models in process through ONNX Runtime (github.com/yalue/onnxruntime_go,
// cgo). The ONNX Runtime shared library is loaded at run time from a configurable path, so
// building Quiver needs no ONNX Runtime; scripts/onnxruntime.sh installs the pinned release
// (1.24.x, the C API version 24 that onnxruntime_go v1.27.0 asks for).
//
// A model must have one tensor input of shape [batch, features] (float or double) and tensor
// outputs whose first dimension is the batch. Inputs are fed in the feature service's declared
// order; missing values are NaN.
package onnx

import "runtime"

// Options configure how models are opened. The zero Options are valid.
type Options struct {
	// LibraryPath is the ONNX Runtime shared library (libonnxruntime.so.1). Default: the name
	// "libonnxruntime.so", found by the dynamic loader. The library is loaded once per process;
	// every model must use the same path.
	LibraryPath string
	// Sessions is the size of each model's session pool. Default: GOMAXPROCS.
	Sessions int
	// IntraOpThreads is the threads each session may use for one run. Default 1 (parallelism
	// comes from the pool).
	IntraOpThreads int
	// CUDA runs the model on an NVIDIA GPU through the CUDA execution provider (the library
	// must be an ONNX Runtime GPU build). DeviceID picks the GPU.
	CUDA     bool
	DeviceID int
}

func (o Options) withDefaults() Options {
	if o.LibraryPath == "" {
		o.LibraryPath = "libonnxruntime.so"
	}
	if o.Sessions <= 0 {
		o.Sessions = runtime.GOMAXPROCS(0)
	}
	if o.IntraOpThreads <= 0 {
		o.IntraOpThreads = 1
	}
	return o
}
