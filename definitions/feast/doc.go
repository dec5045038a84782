// Package feast converts a Feast repository's registry into Quiver definitions: `quiver import
// feast`. It reads the registry file that `feast apply` wrote (through Feast's own protobuf
// definitions, generated under internal/proto), converts entities, file, push and Kafka
// sources, request sources, feature views, on-demand feature views whose Python transformation
// is plain arithmetic (translated to CEL) and feature services, and reports everything else —
// each object or option it could not convert or converted with a different meaning, with what
// to do — so that nothing is dropped silently. docs/from-feast.md is the user's side of it.
//
// It imports only definitions: the generated Feast types stay inside this package.
package feast
