// Command quiver is the Quiver feature store's one binary: it validates and applies feature
// definitions, materializes features, builds training datasets, runs training jobs and serves
// features and predictions.
//
// Each command parses its flags, calls one use case of package project (or, for the remote
// commands, a quiver serve) and renders the result: -o json through output.go, one struct per
// object (jsonout.go, and the reports project returns), or text. Errors are mapped to exit
// codes in one place (exit.go), switching on their kind (internal/errkind).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/project"
	"github.com/quiverfs/quiver/training"
)

func main() {
	superviseIfAsked(os.Args)
	// go-redis logs dial failures through a package-level logger; the errors it returns
	// already say the same, with the address, where the user sees them.
	goredis.SetLogger(discardLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// superviseIfAsked runs the job supervisor and exits when args (os.Args) ask for it: quiver
// train runs each job under this binary, re-executed (training.Supervise).
func superviseIfAsked(args []string) {
	if len(args) > 1 && args[1] == training.SupervisorArg {
		os.Exit(training.Supervise(args[2:]))
	}
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// Version is set at build time with -ldflags "-X main.Version=..."; otherwise it is read from
// the module's build information (project.Version).
var Version = ""

func quiverVersion() string { return project.Version(Version) }

// run executes one command line and returns its exit code. Tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr fileWriter, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	a.addURLSecrets(getenv(config.EnvRegistry), getenv(config.EnvOnline), getenv(config.EnvTrinoDSN))
	a.addSecret(getenv(envToken))
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	a.writeError(stderr, err, a.output == "json" || wantsJSON(args))
	return exitCode(err)
}
