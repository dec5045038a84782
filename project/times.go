package project

import (
	"fmt"
	"io"
	"time"

	"github.com/quiverfs/quiver/internal/errkind"
)

// ParseTime reads the time a command-line flag gives: RFC 3339 ("2026-11-01T12:00:00Z"), a
// UTC date ("2026-11-01"), a UTC date-time without zone ("2026-11-01T12:00:00") or "now".
// flag names it in the error (a usage error).
func ParseTime(flag, s string) (time.Time, error) {
	if s == "now" {
		return time.Now().UTC().Truncate(time.Microsecond), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errkind.Errorf(errkind.Usage, "--%s %q is not a time; use RFC 3339 (2026-11-01T12:00:00Z), a UTC date (2026-11-01) or now", flag, s)
}

// WriteOnlineOnlyPlan writes what a dry run of materialize --online-only would load.
func (m *Materialization) WriteOnlineOnlyPlan(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "Dry run: would load the online store from the offline tables of:\n"); err != nil {
		return err
	}
	for _, v := range m.Views {
		if _, err := fmt.Fprintf(w, "  %s\n", v.Name); err != nil {
			return err
		}
	}
	return nil
}
