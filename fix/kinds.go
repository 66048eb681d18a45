package fix

// Kind is what an action of a plan, or an entry of the journal, does.
type Kind string

const (
	// KindSysctl raises a sysctl (apply changes it, undo restores it).
	KindSysctl Kind = "sysctl"
	// KindCleanup removes leaked objects, each re-verified first.
	KindCleanup Kind = "cleanup"
	// KindGuidance is for the operator: nothing enospc changes live.
	KindGuidance Kind = "guidance"
	// KindPersist writes the raised values to a sysctl.d file (journal
	// entries only).
	KindPersist Kind = "persist"
)

// State is where a journal entry stands.
type State string

const (
	// StatePending is journaled and synced, and maybe written: a crash
	// between the two leaves it for the next run to finish or undo.
	StatePending State = "pending"
	StateDone    State = "done"
	StateSkipped State = "skipped"
	StateFailed  State = "failed"
	StateUndone  State = "undone"
	// StateRemoved and StatePartial are cleanups'.
	StateRemoved State = "removed"
	StatePartial State = "partial"
)
