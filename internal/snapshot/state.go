package snapshot

import "errors"

// Commands of SendLiveSnapshotJobCommand.
const (
	CommandStart   = "start"
	CommandStop    = "stop"
	CommandRestart = "restart"
)

// ErrAlreadyStarted is returned for "start" on a started job (409 JobAlreadyStarted).
var ErrAlreadyStarted = errors.New("job is already started")

// ErrUnknownCommand is returned for a command other than start, stop or restart.
var ErrUnknownCommand = errors.New("unknown command")

// Transition is what a command does to a job in a given state (spec 13.2).
type Transition struct {
	// NeedsChecks: the job limit and a stream probe must pass before the change is applied.
	NeedsChecks bool
	// To is the resulting status; equal to the current one for a no-op.
	To string
	// NewGeneration: the capture pipeline is rebuilt.
	NewGeneration bool
}

// Plan decides what command does to a job whose status is from.
func Plan(from, command string) (Transition, error) {
	switch command {
	case CommandStart:
		if from == StatusStarted {
			return Transition{}, ErrAlreadyStarted
		}
		return Transition{NeedsChecks: true, To: StatusStarted, NewGeneration: true}, nil
	case CommandStop:
		return Transition{To: map[bool]string{true: StatusPaused, false: from}[from == StatusStarted]}, nil
	case CommandRestart:
		return Transition{NeedsChecks: true, To: StatusStarted, NewGeneration: true}, nil
	}
	return Transition{}, ErrUnknownCommand
}
