package definitions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// PathPolicy says where the file paths in definitions (a Parquet source's path, a model's
// path, a training job's entities.path) may point: inside the feature repo, or inside one of
// the roots quiver.yaml lists under allowed_paths (a shared data lake, for example). Relative
// paths are relative to the repo. A path that leaves those roots — absolute, through "..", or
// through a symlink — is refused.
type PathPolicy struct {
	// Root is the feature repo's directory.
	Root string
	// Allowed are more directories paths may point into, absolute or relative to Root.
	Allowed []string
}

// ErrPathOutside is wrapped by the errors of PathPolicy.Resolve.
var ErrPathOutside = fmt.Errorf("%w: path outside the feature repo", ErrInvalid)

// maxSymlinkScan bounds how many directory entries CheckPaths looks at under a directory
// path when it checks for symlinks leading out.
const maxSymlinkScan = 100_000

// roots returns the cleaned absolute roots, the repo first.
func (p PathPolicy) roots() []string {
	out := []string{filepath.Clean(p.Root)}
	for _, a := range p.Allowed {
		if !filepath.IsAbs(a) {
			a = filepath.Join(p.Root, a)
		}
		out = append(out, filepath.Clean(a))
	}
	return out
}

func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}

// globPrefix is the part of a path before its first glob character, cut back to a directory
// when there is one.
func globPrefix(path string) (string, bool) {
	i := strings.IndexAny(path, "*?[")
	if i < 0 {
		return path, false
	}
	return filepath.Dir(path[:i]), true
}

// evalExisting resolves the symlinks of the longest existing prefix of path and appends the
// rest.
func evalExisting(path string) string {
	rest := ""
	for p := path; ; p = filepath.Dir(p) {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest)
		}
		if filepath.Dir(p) == p {
			return path
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

func (p PathPolicy) describeRoots() string {
	if len(p.Allowed) == 0 {
		return "the feature repo (list more roots under allowed_paths: in quiver.yaml)"
	}
	return "the feature repo or allowed_paths (" + strings.Join(p.Allowed, ", ") + ")"
}

// Resolve returns the absolute path a definitions path stands for, or an error wrapping
// ErrPathOutside when it leads outside the repo and the allowed roots, lexically or through
// a symlink. Globs are checked up to their first glob character.
func (p PathPolicy) Resolve(path string) (string, error) {
	full := path
	if !filepath.IsAbs(full) {
		full = filepath.Join(p.Root, full)
	}
	full = filepath.Clean(full)
	static, _ := globPrefix(full)
	roots := p.roots()
	inside := false
	for _, r := range roots {
		inside = inside || within(r, static)
	}
	if !inside {
		what := "path"
		if filepath.IsAbs(path) {
			what = "absolute path"
		}
		return "", fmt.Errorf("%w: %s %q is outside %s", ErrPathOutside, what, path, p.describeRoots())
	}
	if err := p.checkReal(path, static); err != nil {
		return "", err
	}
	return full, nil
}

// checkReal refuses a path whose existing part resolves, through symlinks, outside every root.
func (p PathPolicy) checkReal(path, full string) error {
	real := evalExisting(full)
	for _, r := range p.roots() {
		if within(evalExisting(r), real) {
			return nil
		}
	}
	return fmt.Errorf("%w: path %q resolves through a symlink to %s, outside %s", ErrPathOutside, path, real, p.describeRoots())
}

// checkTree resolves a definitions path and, when it names a directory or a glob, the
// symlinks it would read through (a bounded number of entries).
func (p PathPolicy) checkTree(path string) error {
	full, err := p.Resolve(path)
	if err != nil {
		return err
	}
	if _, glob := globPrefix(full); glob {
		matches, _ := filepath.Glob(full)
		for _, m := range matches {
			if err := p.checkReal(path, m); err != nil {
				return err
			}
		}
		return nil
	}
	fi, err := os.Stat(full)
	if err != nil || !fi.IsDir() {
		return nil //nolint:nilerr // a path that cannot be read is reported where it is opened; here only escapes matter
	}
	seen := 0
	stop := errors.New("stop")
	var bad error
	_ = filepath.WalkDir(full, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // unreadable entries cannot lead out of the repo; skip them
		}
		if seen++; seen > maxSymlinkScan {
			return stop
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if bad = p.checkReal(path, q); bad != nil {
				return stop
			}
		}
		return nil
	})
	return bad
}

// CheckPaths reports every definitions path that leads outside the policy's roots, at the
// path's position.
func CheckPaths(objects []Object, policy PathPolicy) ErrorList {
	var errs ErrorList
	check := func(path string, pos Pos, what string) {
		if path == "" {
			return
		}
		if err := policy.checkTree(path); err != nil {
			errs.add(pos, "%s: %s", what, strings.TrimPrefix(err.Error(), ErrPathOutside.Error()+": "))
		}
	}
	for _, o := range objects {
		switch o := o.(type) {
		case *Source:
			if o.Parquet != nil {
				check(o.Parquet.Path, o.Parquet.PathPos, fmt.Sprintf("source %q parquet", o.Name))
			}
		case *Model:
			check(o.Path, o.PathPos, fmt.Sprintf("model %q", o.Name))
		case *TrainingJob:
			if o.Entities != nil {
				check(o.Entities.Path, o.Entities.PathPos, fmt.Sprintf("training job %q entities", o.Name))
			}
		}
	}
	return errs
}
