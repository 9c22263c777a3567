"""The running batch's layout: one (ROWS x capacity) int64 array per replica, one column per
sequence in admission order (the last admitted is the first preempted, as in vLLM).

Rows: request id; cached tokens; minus the output tokens still to produce (negated so that a
decode step adds 1 to this row and to the cached tokens at once: ``R[STEP] += 1``); KV units
of the sequence's own footprint; prompt tokens still to prefill; and ASYNC, set when the
sequence's last token did not come at the replica's last iteration boundary (its time is
kept apart, `simkit.sim.replica`)."""

ID, CACHED, NLEFT, UNITS, PRE, ASYNC = range(6)
ROWS = 6
#: CACHED and NLEFT are adjacent rows: one slice advances both by a decode step
STEP = slice(CACHED, NLEFT + 1)
