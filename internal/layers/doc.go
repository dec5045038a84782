// Package layers has no code: its test checks the module's import direction (see
// docs/architecture.md), failing on the first import that runs against it.
package layers
