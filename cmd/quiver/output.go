package main

// The one machine contract of the CLI: every -o json result goes through printJSON (Go
// values with explicit snake_case json tags) or printProto (protobuf messages, protojson
// with the .proto's snake_case field names), and every error through writeError.

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/quiverfs/quiver/internal/redact"
)

// printJSON writes v as indented JSON. v's structs carry explicit snake_case json tags (or
// are dedicated output structs); 64-bit ids are strings (see idString). Protobuf messages go
// through printProto instead.
func (a *app) printJSON(v any) error {
	if m, ok := v.(proto.Message); ok {
		return a.printProto(m)
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// protoJSON is how protobuf messages print: the .proto's own (snake_case) field names, enum
// names, and int64 as strings, as protojson always does.
var protoJSON = protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}

// printProto writes a protobuf message as protojson with snake_case field names.
func (a *app) printProto(m proto.Message) error {
	b, err := protoJSON.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s as JSON: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	_, err = a.stdout.Write(append(b, '\n'))
	return err
}

// idString prints a 64-bit id (an Iceberg snapshot id, a run id) as a JSON string, so that
// JavaScript and jq do not round ids above 2^53. Zero (no id) is the empty string.
func idString(id int64) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprint(id)
}

// errorJSONObject is the -o json error object written to stderr.
type errorJSONObject struct {
	Error    string `json:"error"`
	Kind     string `json:"kind"`
	ExitCode int    `json:"exit_code"`
}

// writeError prints err for the user: a JSON object with -o json, else "quiver: message".
// The message has every secret the command knew of redacted.
func (a *app) writeError(w io.Writer, err error, jsonOut bool) {
	msg := a.scrub(err.Error())
	kind := errorKind(err)
	code := kindCodes[kind]
	if jsonOut {
		enc := json.NewEncoder(w)
		_ = enc.Encode(errorJSONObject{Error: msg, Kind: kind, ExitCode: code})
		return
	}
	if !a.printed {
		fmt.Fprintln(w, "quiver: "+msg)
	}
	if code == exitUsage {
		fmt.Fprintln(w, "Run 'quiver --help' for usage.")
	}
}

// reported returns err after the command printed its details (a JSON result, the list of
// definition errors): run then prints nothing more in table output (with -o json it still
// writes the error object to stderr).
func (a *app) reported(err error) error {
	a.printed = true
	return err
}

// addSecret records a value that must never be printed (a token, a store password).
func (a *app) addSecret(s string) {
	if len(s) >= 3 { // shorter strings would redact ordinary text
		a.secrets = append(a.secrets, s)
	}
}

// addURLSecrets records the passwords in store URLs.
func (a *app) addURLSecrets(urls ...string) {
	for _, u := range urls {
		for _, p := range redact.Passwords(u) {
			a.addSecret(p)
		}
	}
}

// scrub replaces every recorded secret in msg, and any URL password left in it.
func (a *app) scrub(msg string) string {
	for _, s := range a.secrets {
		msg = strings.ReplaceAll(msg, s, redact.Redacted)
	}
	return redact.Text(msg)
}

// wantsJSON tells whether a command line asks for -o json, for errors that happen before
// (or while) cobra parses the flags.
func wantsJSON(args []string) bool {
	for i, arg := range args {
		if arg == "--" {
			return false
		}
		switch {
		case (arg == "-o" || arg == "--output") && i+1 < len(args):
			if args[i+1] == "json" {
				return true
			}
		case arg == "-ojson", arg == "-o=json", arg == "--output=json":
			return true
		}
	}
	return false
}
