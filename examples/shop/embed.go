// Package shop is the example feature repo that `quiver init` writes and `make demo` runs:
// its YAML, README and .gitignore are embedded here (Files) so the template exists once.
// The trainers (trainer/, train_torch.py) and the data generator (gen/) live beside it.
package shop

import "embed"

// Files holds the repo template. "{{PROJECT}}" in a file is replaced by the project name;
// gitignore is written as .gitignore (embed skips dotfiles).
//
//go:embed quiver.yaml README.md gitignore features
var Files embed.FS
