package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// protocol is the RESP version the store speaks: the one the URL asks for (?protocol=3), else
// RESP2. A read's replies (arrays of bulk strings and nils) are the same in both, but go-redis
// checks a RESP3 connection for push notifications before each reply of a pipeline: a third
// of its reply parsing for a 100-entity read (docs/BENCHMARKS.md).
func protocol(asked int) int {
	if asked == 0 {
		return 2
	}
	return asked
}

// hmgetCmds appends to cmds the HMGETs of a job, as go-redis's HMGet builds them but with the
// key and fields passed as pointers into the job's slices (a *string in an interface does not
// allocate; go-redis writes and routes it as the string) and the arguments of every command
// in one array: one allocation for the arguments of the whole job instead of 2 + fields per
// command.
func hmgetCmds(ctx context.Context, j *hmgetJob) {
	args := make([]any, 0, 2*len(j.keys)+len(j.fields))
	start := 0
	for c := range j.keys {
		a := len(args)
		args = append(args, "hmget", &j.keys[c])
		for f := start; f < j.ends[c]; f++ {
			args = append(args, &j.fields[f])
		}
		start = j.ends[c]
		j.cmds[c] = goredis.NewSliceCmd(ctx, args[a:len(args):len(args)]...)
	}
}
