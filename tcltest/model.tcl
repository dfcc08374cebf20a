# model.tcl -- the reference model of SPEC.md section 3 and the generator
# of random operation sequences for model01.test (SPEC rule R1).
#
# The model is written from the SPEC alone, in plain Tcl, and knows nothing
# of how the extension is built.  It is the oracle: after every operation
# the test compares what the model says with what the extension did.
#
# THE STATE (the global array M)
#
#   M(t)        the rows of table t that the connection sees now, a dict
#               a -> b ("-" stands for NULL)
#   M(log)      the rows of table log, in rowid order.  Only callbacks write
#               it, and they run in autocommit mode (C3, C7)
#   M(txn)      1 while SQLite has a transaction open (get_autocommit())
#   M(base)     M(t) as it was when that transaction began
#   M(levels)   SQLite's savepoint stack, outermost first.  One entry per
#               open savepoint: {kind name snap qlen depth tsp}.  kind is
#               block (a block's savepoint; name is a token naming the
#               block), manual (savepoint(); name is its serial number) or
#               raw (SAVEPOINT from SQL; name as written, where #K stands
#               for the id of manual savepoint K and @ for the name every
#               block savepoint has, so raw SQL can shadow or end the
#               extension's savepoints by name).  snap is M(t)
#               and qlen the length of M(pending) when it opened, so that
#               ROLLBACK TO restores the rows and discards exactly the
#               callbacks queued after it (C6).  depth is the block a
#               manual savepoint belongs to (S2).  tsp is 1 for a raw
#               savepoint that began the transaction (its RELEASE commits)
#   M(blocks)   the open atomic blocks, outermost first: for each the token
#               of its savepoint, or "" for a block that made none
#   M(owner)    1 if the outermost block began the transaction (E2)
#   M(flag)     the rollback flag (F1, F2)
#   M(broken)   the flag was set by a failed savepoint-less block (F3)
#   M(orphan)   "" or how the transaction ended behind the blocks' back,
#               "committed" or "rolled back" (X5)
#   M(pending)  callbacks queued by the current transaction, in run order
#   M(ready)    callbacks of committed work that wait to run (C9)
#   M(serial)   the last manual savepoint number handed out (S1, S3)
#   M(mode)     atomic_config('transaction_mode')
#   M(msgs)     sqlite3_log() messages the current step must produce
#   M(joined)   the extension follows the open transaction: it joined it
#               when a block or savepoint() first needed it
#   M(doomed)   the extension's own ROLLBACK failed: the open transaction
#               is one it must roll back (section 4); M(dirty) once a
#               statement changed rows in it since
#   M(hastable) temp.atomic_txn exists; M(hastable0) as it was when the
#               transaction began, and M(tablelog) its changes since, each
#               {levels value}: the number of savepoints open then and the
#               value before (DROP TABLE and CREATE roll back, also to a
#               savepoint)
#   M(tstore)   PRAGMA temp_store (0, 1, 2); changing it drops TEMP
#   M(intr)     1 while the step runs under an interrupt that lasts until
#               its statement ends: every statement the extension runs
#               fails before it does anything
#
# A callback is {kind arg robust depth}: kind log inserts arg into log,
# kind boom inserts arg into boom (its CHECK fails for the -1 we use),
# kind tins inserts row (arg, NULL) into t (it fails if that key exists
# when it runs) and kind tcb inserts (arg, arg) into t, whose trigger
# then calls on_commit() from a writing statement with no block open (C5),
# which fails the callback.  Kind blk opens a block and fails inside it
# (the extension rolls back what it left); kind blkok opens a block,
# queues a callback that logs arg, and commits it (C8: it runs then).
#
# HOW THE RULES MAP
#
#   model_enter          E1, E2, E3, X5
#   model_exit           X1, X2, X3, X5, C7, C10
#   model_set_rb         F1, F2, F3
#   model_get_rb         F1
#   model_on_commit      C2, C3, C4, F3, X5
#   model_on_commit_rows the same, once per row of a query (A2's pattern)
#   model_insert         C5, C6, F3, X5 (triggers, INSERT OR ROLLBACK)
#   model_savepoint      S1, F3, X5
#   model_sp_end         S2, P4, C6, F3, X5
#   model_clean          S3, P3
#   model_autocommit     L1, L2, C9, P3
#   model_commit         L1, L3, P2, C7, C9, F3
#   model_rollback       L1, L3, C10
#   model_raw*           L1, X5, C6, C9, P3, P4 (raw SQL from outside)
#   model_close          N3, C10
#   model_config         section 2 (atomic_config)
#   model_repair         section 4 (DOOMED)
#   model_tstore, model_drop, model_closetx: temp.atomic_txn lost or made
#                        inside a transaction
#
# Interrupts (intr, prog) are modelled where the outcome does not depend
# on which statements the connection has prepared: not around on_commit(),
# whose check may or may not prepare again, nor where the extension would
# join a transaction that the application began (an interrupted INSERT
# rolls the whole transaction back, a statement that could not be
# prepared does not).
#
# Left out on purpose: arguments of the wrong type (R7, other files),
# statements that write and call transaction control (E4), COMMIT failures
# (X4, R4: the fault tests), and the functions this version does not have.
#
# Texts the SPEC does not fix (which function name prefixes a refusal,
# how the orphan refusal ends, the text for a block whose savepoint raw
# SQL ended) are the extension's own, taken from its sources.
#
# WHERE THE SPEC LEAVES A CHOICE, the model takes these readings:
#
#   - P3 "the rollback flag is cleared when the transaction ends" is the
#     transaction the blocks were in.  One the application begins and ends
#     while orphans remain leaves the flag and the orphan text alone.
#   - A block that takes the rollback path (X3) with no savepoint to roll
#     back to -- it made none, or raw SQL ended it -- marks the transaction
#     broken (F3), whether a failure or set_rollback(1) set the flag.
#     set_rollback(1) leaves "broken" as it is; set_rollback(0) clears it.
#   - savepoint() with no transaction open uses up no number (S1, S3).
#   - S2 is taken literally: a manual savepoint made before the innermost
#     open block was entered is refused, even if that block made no
#     savepoint.
#   - Raw SQL finds a savepoint by name, newest first, whoever made it;
#     the extension ends its own savepoints (a block's, a manual one) by
#     identity even when a raw savepoint of the same name shadows them.

set ::MODEL_SQL(log)  {INSERT INTO log VALUES(?1)}
set ::MODEL_SQL(boom) {INSERT INTO boom VALUES(?1)}
set ::MODEL_SQL(tins) {INSERT INTO t(a) VALUES(?1)}
set ::MODEL_SQL(tcb)  {INSERT INTO t VALUES(?1, ?1)}
set ::MODEL_SQL(blk)  {SELECT ?1, atomic_enter(), abs(-9223372036854775808), atomic_exit()}
set ::MODEL_SQL(blkok) {SELECT atomic_enter(), on_commit('INSERT INTO log VALUES(?1)', ?1), atomic_exit()}

set ::MODEL_F3 "An error occurred in the current transaction. You can't\
execute queries until the end of the 'atomic' block."
set ::MODEL_L1 "This is forbidden when an 'atomic' block is active."
set ::MODEL_C4 "on_commit() cannot be used in manual transaction\
management; queue callbacks inside an 'atomic' block, or commit first"
set ::MODEL_DOOMED "a transaction that the atomic extension could not roll\
back is still open"
set ::MODEL_DOOMED_HINT "nothing was committed, but the transaction is\
still open: the next call of a function of this extension rolls it back (or\
call atomic_rollback())"

# The schema of every sequence, and what each connection adds to it
set ::MODEL_SCHEMA {
  CREATE TABLE t(a INTEGER PRIMARY KEY, b);
  CREATE TABLE log(x);
  CREATE TABLE boom(x CHECK(x>0));
}
set ::MODEL_TRIGGER {CREATE TEMP TRIGGER tr AFTER INSERT ON t WHEN new.b IS NOT NULL BEGIN SELECT on_commit('INSERT INTO log VALUES(?1)', new.b); END;}

#-------------------------------------------------------------------------
# The model: state
#

# A fresh database and a fresh connection.
proc model_new_db {} {
  global M
  set M(t) {}
  set M(log) {}
  model_connect
}

# N3, C10: a new connection.  Nothing of the extension's state survives.
proc model_connect {} {
  global M
  array set M {
    txn 0 base {} levels {} blocks {} owner 0 flag 0 broken 0 orphan {}
    pending {} ready {} serial 0 ntok 0 mode DEFERRED msgs {}
    joined 0 doomed 0 dirty 0 hastable 1 hastable0 1 tablelog {} tstore 0
    intr 0
  }
}

# A boolean argument (section 2): any integer but 0 is true.
proc model_bool {v} {
  expr {[string trim $v '] != 0}
}

# The id of manual savepoint K (S1): the prefix is random per connection,
# so the test learns it from the first id the extension hands out.
proc model_sid {k} {
  if {$::MODEL_PREFIX eq ""} { return "s00000000_x$k" }
  return "$::MODEL_PREFIX\_x$k"
}

proc model_orphan_text {} {
  return "the transaction was $::M(orphan) outside of the 'atomic' block"
}

# X5: what every refused function says while orphans remain.
proc model_orphan_err {fn} {
  list 1 "$fn\(): [model_orphan_text]; call atomic_exit() for each of the\
[llength $::M(blocks)] open blocks first"
}

#-------------------------------------------------------------------------
# The model: SQLite's transaction and savepoints
#

proc model_begin {} {
  global M
  set M(txn) 1
  set M(base) $M(t)
  set M(levels) {}
  set M(hastable0) $M(hastable)
  set M(tablelog) {}
}

# temp.atomic_txn is made or dropped: remember how to undo it
proc model_table_set {v} {
  global M
  if {$M(hastable)==$v} return
  if {$M(txn)} { lappend M(tablelog) [list [llength $M(levels)] $M(hastable)] }
  set M(hastable) $v
}

# The transaction ends; a rollback restores the rows it began with (and
# temp.atomic_txn as it was).  Nothing follows it any more, and a doomed
# transaction is gone.
proc model_txn_end {bCommit} {
  global M
  if {!$bCommit} {
    set M(t) $M(base)
    set M(hastable) $M(hastable0)
  }
  set M(txn) 0
  set M(base) {}
  set M(levels) {}
  set M(tablelog) {}
  set M(joined) 0
  set M(doomed) 0
  set M(dirty) 0
}

# The extension makes temp.atomic_txn follow the open transaction, unless
# it already does, creating the table if it is missing
proc model_join {} {
  if {$::M(joined)} return
  set ::M(joined) 1
  model_table_set 1
}

# Whether the statements the extension runs fail now (M(intr))
proc model_sqlfails {} {
  return $::M(intr)
}

# Section 4: the extension's own ROLLBACK failed; no block is left, the
# callbacks are discarded, the transaction stays open
proc model_doom {} {
  global M
  set M(doomed) 1
  set M(dirty) 0
  set M(pending) {}
  set M(flag) 0
  set M(broken) 0
}

# Section 4: a function that acts on the transaction rolls a doomed one
# back first, unless statements changed rows in it since.  Returns "" or
# the error of FN.
proc model_repair {fn} {
  global M
  if {!$M(doomed)} { return "" }
  if {$M(dirty)} {
    return [list 1 "$fn\(): $::MODEL_DOOMED, and statements changed rows in\
it since; end it first: atomic_rollback() discards everything in it, COMMIT\
keeps everything in it, the failed work included"]
  }
  if {[model_sqlfails]} {
    return [list 1 "$fn\(): $::MODEL_DOOMED, and rolling it back failed\
again: interrupted"]
  }
  model_txn_end 0
  set M(pending) {}
  return ""
}

proc model_level_push {kind name {depth 0} {tsp 0}} {
  global M
  lappend M(levels) [list $kind $name $M(t) [llength $M(pending)] $depth $tsp]
}

# The index of open savepoint KIND NAME (the extension's own, by
# identity), or -1.
proc model_level_find {kind name} {
  set levels $::M(levels)
  for {set i [expr {[llength $levels]-1}]} {$i>=0} {incr i -1} {
    lassign [lindex $levels $i] k n
    if {$k eq $kind && $n eq $name} { return $i }
  }
  return -1
}

# The index of the newest open savepoint that SQL calls NAME, or -1: raw
# SQL finds savepoints by name, ignoring case, whoever made them.
proc model_level_find_sql {name} {
  set levels $::M(levels)
  for {set i [expr {[llength $levels]-1}]} {$i>=0} {incr i -1} {
    lassign [lindex $levels $i] k n
    switch -- $k {
      block  { set n @ }
      manual { set n #$n }
    }
    if {[string equal -nocase $n $name]} { return $i }
  }
  return -1
}

# RELEASE of level I: it and every newer one close; rows and callbacks
# stay (C6: a released block hands its callbacks to its parent).
proc model_release {i} {
  set ::M(levels) [lrange $::M(levels) 0 [expr {$i-1}]]
}

# ROLLBACK TO level I: the rows come back, the callbacks queued since are
# discarded (C6), the newer levels close and level I stays open.
proc model_rollback_to {i} {
  global M
  lassign [lindex $M(levels) $i] kind name snap qlen
  set M(t) $snap
  set M(pending) [lrange $M(pending) 0 [expr {$qlen-1}]]
  set M(levels) [lrange $M(levels) 0 $i]
  # A table made or dropped inside level I is undone too
  while {[llength $M(tablelog)] && [lindex $M(tablelog) end 0]>$i} {
    set M(hastable) [lindex $M(tablelog) end 1]
    set M(tablelog) [lrange $M(tablelog) 0 end-1]
  }
}

# X5, C9, P3, F3: the transaction ended through raw SQL, not the
# extension.  With blocks open they become orphans, the transaction's
# callbacks are discarded and the flag is cleared (P3).  A transaction
# the application begins and ends while orphans remain is none of the
# blocks' business: the orphan text and the flag stay as they are.
# With no block (manual mode) a commit leaves the callbacks waiting (C9)
# and the end of the transaction clears the flag (F3).
proc model_foreign_end {bCommit} {
  global M
  model_txn_end $bCommit
  if {[llength $M(blocks)]} {
    if {$M(orphan) eq ""} {
      set M(orphan) [expr {$bCommit ? "committed" : "rolled back"}]
      set M(flag) 0
      set M(broken) 0
    }
    set M(pending) {}
    return
  }
  if {$bCommit} {
    lappend M(ready) {*}$M(pending)
  }
  set M(pending) {}
  set M(flag) 0
  set M(broken) 0
}

#-------------------------------------------------------------------------
# The model: callbacks
#

# A message to sqlite3_log().  SQLite formats it into a buffer of 210
# bytes, so a longer one loses its end.
proc model_log {msg} {
  lappend ::M(msgs) [string range $msg 0 208]
}

# C3, C7: run one callback in autocommit mode.  Returns "" or {error
# code}: the callback's error and the name of its result code.
proc model_cb_run {cb} {
  global M
  lassign $cb kind arg
  if {[model_sqlfails]} { return {interrupted SQLITE_INTERRUPT} }
  switch -- $kind {
    blk {
      return [list {integer overflow} SQLITE_ERROR "the callback left an\
'atomic' block open; it was rolled back"]
    }
    blkok {
      # It commits a block of its own (making temp.atomic_txn if it is
      # missing): that commit runs the callbacks waiting from earlier
      # commits (C9), then the one it queued (C8)
      set list [concat $M(ready) [list [list log $arg 0 1]]]
      set M(ready) {}
      model_table_set 1
      set err [model_run_list $list]
      if {$err ne ""} { return [list $err SQLITE_ERROR] }
    }
    log  { lappend M(log) $arg }
    boom { return {{CHECK constraint failed: x>0} SQLITE_CONSTRAINT_CHECK} }
    tins {
      if {[dict exists $M(t) $arg]} {
        return {{UNIQUE constraint failed: t.a} SQLITE_CONSTRAINT_PRIMARYKEY}
      }
      dict set M(t) $arg -
    }
    tcb {
      if {[dict exists $M(t) $arg]} {
        return {{UNIQUE constraint failed: t.a} SQLITE_CONSTRAINT_PRIMARYKEY}
      }
      return [list [model_trigger_err] SQLITE_ERROR]
    }
  }
  return ""
}

# The message of a failed callback R (see model_cb_run): its error, the
# name of its code if bCode, then what the extension did about a block it
# left open
proc model_cb_msg {r bCode} {
  lassign $r err code note
  if {$bCode} { append err " \[$code\]" }
  if {$note ne ""} { append err "; $note" }
  return $err
}

# C7, section 4: after a commit, run LIST in order.  A failing robust
# callback is logged and the run goes on; a failing plain one stops it and
# the rest are discarded.  Returns "" or the error to raise, which quotes
# the callback's error and its result code's name.
proc model_run_list {list} {
  global M
  set n [llength $list]
  for {set i 0} {$i<$n} {incr i} {
    set cb [lindex $list $i]
    set r [model_cb_run $cb]
    if {$r eq ""} continue
    set err [model_cb_msg $r 1]
    set sql $::MODEL_SQL([lindex $cb 0])
    if {[lindex $cb 2]} {
      model_log "Error calling $sql in on_commit() during transaction\
([model_cb_msg $r 0])."
    } else {
      set left [expr {$n-$i-1}]
      set s [expr {$left==1 ? " was" : "s were"}]
      set tail "the transaction was committed"
      if {$left>0} { append tail "; $left later callback$s not run" }
      return "on_commit callback failed after commit: $sql: $err ($tail)"
    }
  }
  return ""
}

# C7, C9: commit, then run the callbacks waiting from earlier commits and
# then those of this transaction.
proc model_commit_and_run {} {
  global M
  model_txn_end 1
  set list [concat $M(ready) $M(pending)]
  set M(ready) {}
  set M(pending) {}
  set M(flag) 0
  set M(broken) 0
  model_run_list $list
}

#-------------------------------------------------------------------------
# The model: the SQL functions.  Each returns {0 ROWS} or {1 MESSAGE},
# as catchsql would.
#

# E1, E2, E3, X5: atomic_enter(?savepoint? ?durable?)
proc model_enter {args} {
  global M
  set bSp 1
  set bDurable 0
  if {[llength $args]>0} { set bSp [model_bool [lindex $args 0]] }
  if {[llength $args]>1} { set bDurable [model_bool [lindex $args 1]] }
  if {$M(orphan) ne ""} { return [model_orphan_err atomic_enter] }
  set n [llength $M(blocks)]
  if {$n>0} {
    # E3: an inner block
    if {$bDurable} {
      return {1 {atomic_enter(): A durable atomic block cannot be nested\
within another atomic block.}}
    }
    set tok ""
    if {$bSp && !$M(flag)} {
      if {[model_sqlfails]} { return {1 {atomic_enter(): interrupted}} }
      set tok B[incr M(ntok)]
      model_level_push block $tok
    }
    lappend M(blocks) $tok
    return [list 0 [llength $M(blocks)]]
  }
  set r [model_repair atomic_enter]
  if {$r ne ""} { return $r }
  if {$bDurable && $M(txn)} {
    return {1 {atomic_enter(): A durable atomic block cannot be nested\
within another atomic block. (A transaction is open: commit or roll it back\
first.)}}
  }
  if {!$M(txn)} {
    # E2: BEGIN; the block owns the transaction
    if {[model_sqlfails]} { return {1 {atomic_enter(): interrupted}} }
    model_begin
    model_join
    set M(owner) 1
    set tok ""
  } else {
    # E3: the outermost block in the application's transaction
    model_join
    set tok ""
    if {$bSp} {
      if {[model_sqlfails]} { return {1 {atomic_enter(): interrupted}} }
      set tok B[incr M(ntok)]
      model_level_push block $tok
    }
    set M(owner) 0
  }
  # E2: every outermost block clears the flag
  set M(flag) 0
  set M(broken) 0
  lappend M(blocks) $tok
  return {0 1}
}

# S2: a manual savepoint made in a block that closes belongs to the block
# around it from then on.
proc model_pop_block {} {
  global M
  set M(blocks) [lrange $M(blocks) 0 end-1]
  set n [llength $M(blocks)]
  set levels {}
  foreach l $M(levels) {
    if {[lindex $l 0] eq "manual" && [lindex $l 4]>$n} { lset l 4 $n }
    lappend levels $l
  }
  set M(levels) $levels
  if {$n==0} {
    set M(owner) 0
    set M(orphan) ""
  }
}

# X1, X2, X3, X5, C7: atomic_exit(?ok?)
proc model_exit {args} {
  global M
  set bOk 1
  if {[llength $args]>0} { set bOk [model_bool [lindex $args 0]] }
  set n [llength $M(blocks)]
  if {$n==0} { return {1 {atomic_exit() called outside of an 'atomic' block}} }
  if {$M(orphan) ne ""} {
    # X5: an orphan closes with no SQL and always raises
    set msg "atomic_exit(): [model_orphan_text]"
    model_pop_block
    return [list 1 $msg]
  }
  set bKeep [expr {$bOk && !$M(flag)}]
  if {$n==1 && $M(owner)} {
    model_pop_block
    if {[model_sqlfails]} {
      # Section 4: COMMIT (or ROLLBACK) fails, and the ROLLBACK too
      model_doom
      if {$bKeep} {
        return [list 1 "atomic_exit(): COMMIT failed: interrupted; the\
ROLLBACK that followed failed too: interrupted; $::MODEL_DOOMED_HINT"]
      }
      return [list 1 "atomic_exit(): ROLLBACK failed: interrupted;\
$::MODEL_DOOMED_HINT"]
    }
    if {$bKeep} {
      # X2, C7: COMMIT, then the callbacks
      set err [model_commit_and_run]
      if {$err ne ""} { return [list 1 $err] }
      return {0 1}
    }
    # X3, C10: ROLLBACK; no callback runs
    model_txn_end 0
    set M(pending) {}
    set M(flag) 0
    set M(broken) 0
    return {0 0}
  }
  set tok [lindex $M(blocks) end]
  set i -1
  if {$tok ne ""} { set i [model_level_find block $tok] }
  if {$bKeep} {
    if {$tok eq ""} {
      # X2: a savepoint-less block does nothing
      model_pop_block
      return {0 1}
    }
    if {$i>=0 && [model_sqlfails]} {
      # X4: RELEASE fails, and the ROLLBACK TO after it: the savepoint and
      # the work stay, the flag is set
      set M(flag) 1
      set M(broken) 1
      model_pop_block
      return [list 1 "atomic_exit(): RELEASE failed: interrupted; the\
ROLLBACK TO that followed failed too: interrupted; the block's work is\
still in the transaction, and the rollback flag is set: [model_next]"]
    }
    if {$i>=0} {
      # X2: RELEASE
      model_release $i
      model_pop_block
      return {0 1}
    }
    # X5 (last paragraph) and X4: raw SQL ended the block's savepoint, so
    # RELEASE and ROLLBACK TO both fail: the flag is set, the error raised
    set M(flag) 1
    set M(broken) 1
    model_pop_block
    return [list 1 "atomic_exit(): the block's savepoint was released or\
rolled back outside of the 'atomic' block; [model_next]"]
  }
  # X3: clear the flag, then roll back to the savepoint, or pass the
  # failure up when there is none (F3)
  set M(flag) 0
  set M(broken) 0
  if {$i<0 || [model_sqlfails]} {
    # Nothing to roll back to, or ROLLBACK TO failed: the flag is set and
    # nothing is raised
    set M(flag) 1
    set M(broken) 1
  } else {
    model_rollback_to $i
    model_release $i
  }
  model_pop_block
  return {0 0}
}

# What a failed inner block's error says happens next
proc model_next {} {
  if {[llength $::M(blocks)]>0} { return "the enclosing block will roll back" }
  return "the application's transaction is broken: roll it back with\
atomic_rollback()"
}

# F1, F2, F3: set_rollback(flag)
proc model_set_rb {f} {
  global M
  if {[llength $M(blocks)]==0} {
    return {1 {set_rollback(): The rollback flag doesn't work outside of an 'atomic' block.}}
  }
  set M(flag) [model_bool $f]
  if {!$M(flag)} { set M(broken) 0 }
  return [list 0 $M(flag)]
}

# F1: get_rollback()
proc model_get_rb {} {
  global M
  if {[llength $M(blocks)]==0} {
    return {1 {get_rollback(): The rollback flag doesn't work outside of an 'atomic' block.}}
  }
  return [list 0 $M(flag)]
}

# X5, F3, C2, C3, C4: on_commit(sql, arg) and on_commit_robust(sql, arg)
# called by a top-level SELECT.
proc model_on_commit {bRobust kind arg} {
  global M
  set fn [expr {$bRobust ? "on_commit_robust" : "on_commit"}]
  if {$M(orphan) ne ""} { return [model_orphan_err $fn] }
  if {$M(broken)} { return [list 1 "$fn\(): $::MODEL_F3"] }
  set r [model_repair $fn]
  if {$r ne ""} { return $r }
  set cb [list $kind $arg $bRobust [llength $M(blocks)]]
  if {[llength $M(blocks)]} {
    lappend M(pending) $cb
    return {0 1}
  }
  if {$M(txn)} {
    if {$bRobust} { return [list 1 "on_commit_robust(): $::MODEL_C4"] }
    return [list 1 $::MODEL_C4]
  }
  set r [model_cb_run $cb]
  if {$r ne ""} {
    set err [model_cb_msg $r 0]
    if {!$bRobust} { return [list 1 $err] }
    model_log "Error calling $::MODEL_SQL($kind) in on_commit() ($err)."
  }
  return {0 0}
}

# C2, C3, A2's batch pattern: one on_commit() call per row of a read-only
# query, SELECT on_commit(SQL, a+OFFSET) FROM t ORDER BY a (boom: -a).
# A read-only statement undoes nothing when it fails: what the calls
# before the failing one did stays.
proc model_on_commit_rows {bRobust kind offset} {
  set res {}
  foreach a [lsort -integer [dict keys $::M(t)]] {
    set arg [expr {$kind eq "boom" ? -$a : $a+$offset}]
    set r [model_on_commit $bRobust $kind $arg]
    if {[lindex $r 0]} { return $r }
    lappend res [lindex $r 1]
  }
  list 0 $res
}

# What the trigger's on_commit() says when a row fires it: "" if the
# callback is queued, else the error that fails the INSERT (X5, F3, C4,
# C5).
proc model_trigger_err {} {
  global M
  if {$M(orphan) ne ""} { return [lindex [model_orphan_err on_commit] 1] }
  if {$M(broken)} { return "on_commit(): $::MODEL_F3" }
  if {$M(doomed)} {
    return "on_commit(): $::MODEL_DOOMED; roll it back first with\
atomic_rollback()"
  }
  if {[llength $M(blocks)]} { return "" }
  if {$M(txn)} { return $::MODEL_C4 }
  return "on_commit(): called by a statement that writes, with no 'atomic'\
block open; wrap that statement in a block: SELECT atomic_enter(); <the\
statement>; SELECT atomic_exit();"
}

# C6: INSERT INTO t VALUES(a,b),... -- a row with b set fires the TEMP
# trigger, which queues on_commit('INSERT INTO log VALUES(?1)', b).  The
# statement is all or nothing: a duplicate key or a refused callback on
# any row undoes the rows before it and the callbacks their triggers
# queued.  With no transaction open it commits at once.  With
# bRollback, INSERT OR ROLLBACK: a duplicate key makes SQLite roll back
# the whole transaction, behind the blocks' back (X5).
proc model_insert {rows {bRollback 0}} {
  global M
  set t $M(t)
  set queued {}
  foreach row $rows {
    lassign $row a b
    if {[dict exists $t $a]} {
      if {$bRollback && $M(txn)} { model_foreign_end 0 }
      return {1 {UNIQUE constraint failed: t.a}}
    }
    dict set t $a $b
    if {$b ne "-"} {
      set err [model_trigger_err]
      if {$err ne ""} { return [list 1 $err] }
      lappend queued [list log $b 0 [llength $M(blocks)]]
    }
  }
  set M(t) $t
  lappend M(pending) {*}$queued
  if {$M(doomed)} { set M(dirty) 1 }
  return {0 {}}
}

# DELETE FROM t WHERE a=K: a plain write, undone by rollbacks like any
proc model_delete {k} {
  if {[dict exists $::M(t) $k] && $::M(doomed)} { set ::M(dirty) 1 }
  dict unset ::M(t) $k
  return {0 {}}
}

# S1, F3, X5: savepoint()
proc model_savepoint {} {
  global M
  if {$M(orphan) ne ""} { return [model_orphan_err savepoint] }
  if {$M(broken)} { return [list 1 "savepoint(): $::MODEL_F3"] }
  set r [model_repair savepoint]
  if {$r ne ""} { return $r }
  if {!$M(txn)} { return {0 {{}}} }
  model_join
  if {[model_sqlfails]} { return {1 {savepoint(): interrupted}} }
  set k [incr M(serial)]
  model_level_push manual $k [llength $M(blocks)]
  return [list 0 [list [model_sid $k]]]
}

# S2, P4, C6, F3, X5: savepoint_commit(sid) and savepoint_rollback(sid).
# K is the number in the id, or "null" for a NULL sid.
proc model_sp_end {bRollback k} {
  global M
  set fn [expr {$bRollback ? "savepoint_rollback" : "savepoint_commit"}]
  if {$M(orphan) ne ""} { return [model_orphan_err $fn] }
  if {$M(broken)} { return [list 1 "$fn\(): $::MODEL_F3"] }
  set r [model_repair $fn]
  if {$r ne ""} { return $r }
  if {$k eq "null" || !$M(txn)} { return {0 {{}}} }
  set sid [model_sid $k]
  set i [model_level_find manual $k]
  if {$i<0} { return [list 1 "$fn\(): no such savepoint: $sid"] }
  if {[lindex $M(levels) $i 4]<[llength $M(blocks)]} {
    return [list 1 "$fn\(): savepoint $sid was made outside the innermost\
'atomic' block; ending it would end that block's savepoint too, so end it\
after the block exits"]
  }
  if {[model_sqlfails]} { return [list 1 "$fn\(): interrupted"] }
  if {$bRollback} {
    model_rollback_to $i
  } else {
    model_release $i
  }
  return {0 {{}}}
}

# S3, P3: clean_savepoints()
proc model_clean {} {
  global M
  set n 0
  foreach l $M(levels) { if {[lindex $l 0] eq "manual"} { incr n } }
  if {$n>0} {
    if {$n==1} {
      set msg "1 manual savepoint is open; release or roll back it first"
    } else {
      set msg "$n manual savepoints are open; release or roll back them first"
    }
    return [list 1 "clean_savepoints(): $msg, or ids would repeat"]
  }
  set M(serial) 0
  return {0 {{}}}
}

# L1, L2, C9, P3: set_autocommit(flag)
proc model_autocommit {f} {
  global M
  if {[llength $M(blocks)]} { return [list 1 "set_autocommit(): $::MODEL_L1"] }
  set r [model_repair set_autocommit]
  if {$r ne ""} { return $r }
  if {![model_bool $f]} {
    if {!$M(txn)} {
      if {[model_sqlfails]} { return {1 {set_autocommit(): interrupted}} }
      model_begin
    }
    return {0 0}
  }
  if {$M(txn)} {
    return {1 {set_autocommit(): a transaction is open; end it with atomic_commit() or atomic_rollback() first}}
  }
  set list $M(ready)
  set M(ready) {}
  set err [model_run_list $list]
  if {$err ne ""} { return [list 1 $err] }
  return {0 1}
}

# L1, L3, P2, C9, F3: atomic_commit()
proc model_commit {} {
  global M
  if {[llength $M(blocks)]} { return [list 1 "atomic_commit(): $::MODEL_L1"] }
  if {$M(broken)} { return [list 1 "atomic_commit(): $::MODEL_F3"] }
  set r [model_repair atomic_commit]
  if {$r ne ""} { return $r }
  if {!$M(txn)} { return {0 {{}}} }
  if {[model_sqlfails]} { return {1 {atomic_commit(): interrupted}} }
  set err [model_commit_and_run]
  if {$err ne ""} { return [list 1 $err] }
  return {0 {{}}}
}

# L1, L3, C10: atomic_rollback()
proc model_rollback {} {
  global M
  if {[llength $M(blocks)]} { return [list 1 "atomic_rollback(): $::MODEL_L1"] }
  if {$M(txn) && [model_sqlfails]} {
    return {1 {atomic_rollback(): interrupted; the transaction is still open}}
  }
  if {$M(txn)} {
    model_txn_end 0
    set M(pending) {}
  }
  set M(flag) 0
  set M(broken) 0
  return {0 {{}}}
}

# Raw BEGIN, COMMIT, ROLLBACK from outside the extension (L1, X5, C9)
proc model_raw {what} {
  global M
  switch -- $what {
    BEGIN {
      if {$M(txn)} { return {1 {cannot start a transaction within a transaction}} }
      model_begin
    }
    COMMIT {
      if {!$M(txn)} { return {1 {cannot commit - no transaction is active}} }
      model_foreign_end 1
    }
    ROLLBACK {
      if {!$M(txn)} { return {1 {cannot rollback - no transaction is active}} }
      model_foreign_end 0
    }
  }
  return {0 {}}
}

# A savepoint name as the generator writes it: a raw name, #K for the id
# of manual savepoint K, or @ for the name of the blocks' savepoints (if
# the test could learn it: else a name of its own).  Returns {name text}:
# the name as the model knows it and as SQL spells it.
proc model_sp_target {name} {
  if {[string index $name 0] eq "#"} {
    set k [string range $name 1 end]
    return [list $name "\"[model_sid $k]\""]
  }
  if {$name eq "@"} {
    if {$::MODEL_BLKNAME eq ""} { return {blk_unknown blk_unknown} }
    return [list @ $::MODEL_BLKNAME]
  }
  list $name $name
}

# SQLite's text for a name that is not open
proc model_no_such {text} {
  list 1 "no such savepoint: [string trim $text \"]"
}

# Raw SAVEPOINT name: in autocommit mode it begins the transaction.
proc model_raw_savepoint {name} {
  global M
  set name [lindex [model_sp_target $name] 0]
  if {!$M(txn)} {
    model_begin
    model_level_push raw $name 0 1
  } else {
    model_level_push raw $name
  }
  return {0 {}}
}

# Raw RELEASE name (X5 when it commits the transaction, P4, X5 last
# paragraph when a block's savepoint goes with it)
proc model_raw_release {name} {
  global M
  lassign [model_sp_target $name] n text
  set i [model_level_find_sql $n]
  if {$i<0} { return [model_no_such $text] }
  if {[lindex $M(levels) $i 5]} {
    model_foreign_end 1
  } else {
    model_release $i
  }
  return {0 {}}
}

# Raw ROLLBACK TO name (C6, P4, X5 last paragraph)
proc model_raw_rollback_to {name} {
  lassign [model_sp_target $name] n text
  set i [model_level_find_sql $n]
  if {$i<0} { return [model_no_such $text] }
  model_rollback_to $i
  return {0 {}}
}

# N3, C10: the connection closes (its transaction rolls back, no callback
# runs) and a new one opens on the same file.
proc model_close {} {
  global M
  if {$M(txn)} { model_txn_end 0 }
  model_connect
  return {0 {}}
}

# PRAGMA temp_store: a new value drops TEMP, temp.atomic_txn with it (the
# test's TEMP trigger is made again at once); inside a transaction SQLite
# refuses a new value
proc model_tstore {v} {
  global M
  if {$v==$M(tstore)} { return {0 {}} }
  if {$M(txn)} {
    return {1 {temporary storage cannot be changed from within a transaction}}
  }
  set M(tstore) $v
  model_table_set 0
  return {0 {}}
}

# DROP TABLE temp.atomic_txn: refused while it follows the transaction
# (SQLite shows the refusal of a virtual table's xDestroy as "SQL logic
# error"); the extension makes it again when it needs it
proc model_drop {} {
  global M
  if {!$M(hastable)} { return {1 {no such table: temp.atomic_txn}} }
  if {$M(joined)} { return {1 {SQL logic error}} }
  model_table_set 0
  return {0 {}}
}

# The connection closes; a new one begins a transaction and loads the
# extension inside it, so temp.atomic_txn is made later, inside some
# transaction
proc model_closetx {} {
  model_close
  set ::M(hastable) 0
  model_begin
  return {0 {}}
}

# Section 2: atomic_config('transaction_mode' ?, value?)
proc model_config {args} {
  global M
  set old $M(mode)
  if {[llength $args]==0} { return [list 0 $old] }
  set v [string toupper [lindex $args 0]]
  if {$v ni {DEFERRED IMMEDIATE EXCLUSIVE}} {
    return [list 1 "atomic_config(): transaction_mode must be DEFERRED,\
IMMEDIATE or EXCLUSIVE, not '[lindex $args 0]'"]
  }
  set M(mode) $v
  return [list 0 $old]
}

# Apply operation OP (see model_op_sql) to the model.
proc model_apply {op} {
  set args [lrange $op 1 end]
  switch -- [lindex $op 0] {
    enter    { model_enter {*}$args }
    exit     { model_exit {*}$args }
    ins      { model_insert [lindex $op 1] }
    insr     { model_insert [lindex $op 1] 1 }
    del      { model_delete [lindex $op 1] }
    oc       { model_on_commit {*}$args }
    ocsel    { model_on_commit_rows {*}$args }
    setrb    { model_set_rb [lindex $op 1] }
    sp       { model_savepoint }
    spc      { model_sp_end 0 [lindex $op 1] }
    spr      { model_sp_end 1 [lindex $op 1] }
    clean    { model_clean }
    raw      { model_raw [lindex $op 1] }
    rsp      { model_raw_savepoint [lindex $op 1] }
    rrel     { model_raw_release [lindex $op 1] }
    rrto     { model_raw_rollback_to [lindex $op 1] }
    ac       { model_autocommit [lindex $op 1] }
    commit   { model_commit }
    rollback { model_rollback }
    close    { model_close }
    closetx  { model_closetx }
    cfg      { model_config {*}$args }
    tstore   { model_tstore [lindex $op 1] }
    drop     { model_drop }
    intr - prog {
      # The operation runs with every statement the extension runs
      # failing; if the function itself succeeds, the statement that
      # called it still fails when it goes on
      set ::M(intr) 1
      set r [model_apply [lindex $op 1]]
      set ::M(intr) 0
      if {[lindex $r 0]==0} { return {1 interrupted} }
      return $r
    }
  }
}

# What is compared after every step besides the result: depth,
# autocommit, the rows of t and log, and the queued callbacks as
# atomic_pending lists them (C9 ones first).
proc model_observe {} {
  global M
  set rows {}
  foreach a [lsort -integer [dict keys $M(t)]] {
    lappend rows "$a:[dict get $M(t) $a]"
  }
  set pend {}
  foreach cb [concat $M(ready) $M(pending)] {
    lassign $cb kind arg robust depth
    lappend pend "\[$arg\]/$depth/$robust/$::MODEL_SQL($kind)"
  }
  list [llength $M(blocks)] [expr {!$M(txn)}] [join $rows " "] \
      [join $M(log) " "] [join $pend ";"]
}

#-------------------------------------------------------------------------
# The extension side.  The harness learns what is random per connection
# (the prefix of manual savepoint ids, the name of block savepoints) from
# the extension's answers, so that the model and the SQL agree on names.
#

set ::MODEL_PREFIX ""
set ::MODEL_BLKNAME ""
set ::MODEL_DB model.db

set ::MODEL_OBSERVE {
  SELECT atomic_depth(), get_autocommit(),
    (SELECT group_concat(a||':'||ifnull(b,'-'), ' ')
       FROM (SELECT a, b FROM t ORDER BY a)),
    (SELECT group_concat(x, ' ') FROM (SELECT x FROM log ORDER BY rowid)),
    (SELECT group_concat(args||'/'||depth||'/'||robust||'/'||sql, ';')
       FROM (SELECT * FROM atomic_pending ORDER BY seq))
}

# Open the connection on the test database, with the extension and the
# TEMP trigger.
proc ext_connect {{schema ""} {bInTxn 0}} {
  sqlite3 db $::MODEL_DB
  db eval { PRAGMA synchronous=OFF }
  db eval $schema
  db eval $::MODEL_TRIGGER
  if {$bInTxn} { db eval BEGIN }
  if {[file exists $::EXT.so]} { load_atomic db $::EXT.so } else { load_atomic db }
  # intr() interrupts the statement that calls it, until it ends; prog()
  # installs a progress handler that interrupts every statement from then
  # on (ext_apply removes it)
  db function intr {apply {{} { db interrupt; return 0 }}}
  db function prog {apply {{} { db progress 1 {expr 1}; return 0 }}}
  set ::MODEL_PREFIX ""
  set ::MODEL_BLKNAME ""
  set ::MODEL_FRESH 1
}

# A fresh database.  A connection that was just opened and has not run
# an operation yet (the last step of every generated sequence reopens
# it) only needs its tables emptied, which is much faster.
set ::MODEL_FRESH 0
proc ext_new_db {} {
  if {![info exists ::MODEL_STMTVTAB]} {
    catch { db close }
    sqlite3 db :memory:
    set ::MODEL_STMTVTAB [expr {![catch {db eval {SELECT * FROM sqlite_stmt}}]}]
    db close
  }
  if {$::MODEL_FRESH} {
    db eval { DELETE FROM t; DELETE FROM log; DELETE FROM boom; }
  } else {
    catch { db close }
    forcedelete $::MODEL_DB
    ext_connect $::MODEL_SCHEMA
  }
  set ::MODEL_FRESH 0
  log_take
}

# The SQL of operation OP.
proc model_op_sql {op} {
  set a [lrange $op 1 end]
  switch -- [lindex $op 0] {
    enter    { return "SELECT atomic_enter([join $a {, }]);" }
    exit     { return "SELECT atomic_exit([join $a {, }]);" }
    ins - insr {
      set v {}
      foreach row [lindex $op 1] {
        lassign $row x y
        if {$y eq "-"} { set y NULL }
        lappend v "($x,$y)"
      }
      if {[lindex $op 0] eq "insr"} {
        return "INSERT OR ROLLBACK INTO t VALUES[join $v ,];"
      }
      return "INSERT INTO t VALUES[join $v ,];"
    }
    del      { return "DELETE FROM t WHERE a=$a;" }
    oc {
      lassign $a robust kind arg
      set fn [expr {$robust ? "on_commit_robust" : "on_commit"}]
      set text [string map {' ''} $::MODEL_SQL($kind)]
      return "SELECT $fn\('$text', $arg);"
    }
    ocsel {
      lassign $a robust kind offset
      set fn [expr {$robust ? "on_commit_robust" : "on_commit"}]
      set arg [expr {$kind eq "boom" ? "-a" : "a+$offset"}]
      return "SELECT $fn\('$::MODEL_SQL($kind)', $arg) FROM t ORDER BY a;"
    }
    setrb    { return "SELECT set_rollback($a);" }
    sp       { return "SELECT savepoint();" }
    spc - spr {
      set fn [expr {[lindex $op 0] eq "spc" ? "savepoint_commit" : "savepoint_rollback"}]
      if {$a eq "null"} { return "SELECT $fn\(NULL);" }
      return "SELECT $fn\('[model_sid $a]');"
    }
    clean    { return "SELECT clean_savepoints();" }
    raw      { return "$a;" }
    rsp - rrel - rrto {
      set target [lindex [model_sp_target [lindex $op 1]] 1]
      set verb [dict get {rsp SAVEPOINT rrel RELEASE rrto {ROLLBACK TO}} [lindex $op 0]]
      return "$verb $target;"
    }
    ac       { return "SELECT set_autocommit($a);" }
    commit   { return "SELECT atomic_commit();" }
    rollback { return "SELECT atomic_rollback();" }
    close    { return "-- close and reopen" }
    closetx  { return "-- close, reopen, BEGIN, load" }
    tstore {
      set v [lindex {DEFAULT FILE MEMORY} $a]
      return "PRAGMA temp_store = $v; [string map {{TRIGGER tr} {TRIGGER IF NOT EXISTS tr}} $::MODEL_TRIGGER]"
    }
    drop     { return "DROP TABLE temp.atomic_txn;" }
    intr - prog {
      set inner [model_op_sql [lindex $op 1]]
      return "SELECT [lindex $op 0](), [string range $inner 7 end]"
    }
    cfg {
      if {[llength $a]==0} { return "SELECT atomic_config('transaction_mode');" }
      return "SELECT atomic_config('transaction_mode', '[lindex $a 0]');"
    }
  }
}

# Run OP on the extension.  Returns {0 ROWS} or {1 MESSAGE}.
proc ext_apply {op} {
  if {[lindex $op 0] eq "close"} {
    db close
    ext_connect
    return {0 {}}
  }
  if {[lindex $op 0] eq "closetx"} {
    db close
    ext_connect "" 1
    return {0 {}}
  }
  set ::MODEL_FRESH 0
  if {[lindex $op 1] eq "@" && $::MODEL_BLKNAME eq "" && $::MODEL_STMTVTAB} {
    # The name of the blocks' savepoints is random per connection: read
    # it from the statement the extension keeps prepared, if it has one
    set ::MODEL_BLKNAME [db onecolumn {
      SELECT substr(sql, 11) FROM sqlite_stmt
       WHERE sql GLOB 'SAVEPOINT _a[0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
    }]
  }
  set rc [catch { db eval [model_op_sql $op] } res]
  if {[lindex $op 0] eq "prog"} { db progress 0 {} }
  if {!$rc && [lindex $op 0] eq "sp" && $::MODEL_PREFIX eq ""} {
    regexp {^(s[0-9a-f]{8})_x[0-9]+$} [lindex $res 0] -> ::MODEL_PREFIX
  }
  list $rc $res
}

proc ext_observe {} {
  set obs [db eval $::MODEL_OBSERVE]
  lappend obs [list [catch {db eval {SELECT get_rollback()}} res] $res]
  set obs
}

# The "Error calling ..." messages the extension logged since last time.
proc ext_msgs {} {
  set res {}
  foreach m [log_take] {
    if {[regexp {^-?[0-9]+ (Error calling .*)$} $m -> txt]} { lappend res $txt }
  }
  set res
}

#-------------------------------------------------------------------------
# Running and comparing
#

# Run OP on both and compare.  Returns "" or a description of the first
# difference.
proc model_step {op} {
  set got [ext_apply $op]
  set ::M(msgs) {}
  set exp [model_apply $op]
  lappend ::MODEL_TRACE $exp
  if {$exp ne $got} {
    return "result: expected \[$exp\] got \[$got\]"
  }
  set eobs [model_observe]
  lappend eobs [model_get_rb]
  set gobs [ext_observe]
  foreach name {atomic_depth() get_autocommit() t log atomic_pending get_rollback()} e $eobs g $gobs {
    if {$e ne $g} { return "$name: expected \[$e\] got \[$g\]" }
  }
  set gmsgs [ext_msgs]
  if {$::M(msgs) ne $gmsgs} {
    return "sqlite3_log: expected \[$::M(msgs)\] got \[$gmsgs\]"
  }
  return ""
}

# Run the sequence OPS on a fresh database.  Returns "" or {STEP DIFF}.
# Every step's model result is left in ::MODEL_TRACE.
proc model_check {ops} {
  ext_new_db
  model_new_db
  set ::MODEL_TRACE {}
  set i 0
  foreach op $ops {
    incr i
    set d [model_step $op]
    if {$d ne ""} { return [list $i $d] }
  }
  return ""
}

# Shrink a failing sequence: drop halves, quarters, ... of it, then any
# run of up to three steps, then any two steps apart (an enter and its
# exit), for as long as it still fails.
proc model_shrink {ops} {
  set chunk [expr {[llength $ops]/2}]
  while {$chunk>3} {
    set i 0
    while {$i<[llength $ops]} {
      set try [lreplace $ops $i [expr {$i+$chunk-1}]]
      if {[llength $try] && [model_check $try] ne ""} {
        set ops $try
      } else {
        incr i $chunk
      }
    }
    set chunk [expr {$chunk/2}]
  }
  set progress 1
  while {$progress} {
    set progress 0
    foreach size {3 2 1} {
      for {set i 0} {$i+$size<=[llength $ops]} {incr i} {
        set try [lreplace $ops $i [expr {$i+$size-1}]]
        if {[llength $try] && [model_check $try] ne ""} {
          set ops $try
          set progress 1
          incr i -1
        }
      }
    }
    for {set i 0} {$i<[llength $ops]} {incr i} {
      for {set j [expr {$i+2}]} {$j<[llength $ops]} {incr j} {
        set try [lreplace [lreplace $ops $j $j] $i $i]
        if {[llength $try] && [model_check $try] ne ""} {
          set ops $try
          set progress 1
          incr j -1
        }
      }
    }
  }
  return $ops
}

# The reproduction of OPS: SQL for the sqlite3 CLI, run from /work/main.
proc model_repro {ops} {
  set lines {}
  lappend lines ".open --new model.db" ".load ./atomic"
  foreach s [split [string trim $::MODEL_SCHEMA] \n] { lappend lines [string trim $s] }
  lappend lines $::MODEL_TRIGGER
  foreach op $ops {
    if {[lindex $op 0] eq "close"} {
      lappend lines "-- close and reopen:" ".open model.db" ".load ./atomic" \
          $::MODEL_TRIGGER
    } elseif {[lindex $op 0] eq "closetx"} {
      lappend lines "-- close, reopen, BEGIN, load:" ".open model.db" \
          $::MODEL_TRIGGER "BEGIN;" ".load ./atomic"
    } else {
      lappend lines [model_op_sql $op]
    }
  }
  lappend lines "-- then compare:" \
      "[string trim [regsub -all {\s+} $::MODEL_OBSERVE { }]];" \
      "SELECT get_rollback();"
  join $lines \n
}

#-------------------------------------------------------------------------
# The generator
#

proc model_rand {n} { expr {int(rand()*$n)} }
proc model_pick {list} { lindex $list [model_rand [llength $list]] }
proc model_chance {p} { expr {rand()<$p} }

# A random operation, likely to be interesting in the model's state and
# the sequence's profile ::MODEL_PROFILE.
# Callback arguments and trigger values come from ::MODEL_NEXT, unique in
# a sequence, so the log tells every callback apart.
proc model_gen_op {} {
  global M
  set n [llength $M(blocks)]
  set txn $M(txn)
  set manual {}
  set raws {}
  foreach l $M(levels) {
    switch -- [lindex $l 0] {
      manual { lappend manual [lindex $l 1] }
      raw    { lappend raws [lindex $l 1] }
    }
  }
  set w [list \
    enter    [expr {$n==0 ? 14 : ($n<5 ? 8 : 1)}] \
    exit     [expr {$n>0 ? 12 : 1}] \
    ins      8 \
    insr     0.6 \
    del      1.5 \
    oc       [expr {$n>0 ? 10 : 3}] \
    ocsel    1 \
    setrb    [expr {$n>0 ? 3 : 0.5}] \
    sp       [expr {$txn ? 4 : 1}] \
    spc      [expr {$M(serial)>0 ? 2.5 : 0.3}] \
    spr      [expr {$M(serial)>0 ? 2.5 : 0.3}] \
    clean    0.7 \
    begin    [expr {$txn ? 0.4 : 1.5}] \
    commitr  [expr {$txn ? 1.3 : 0.2}] \
    rollbackr [expr {$txn ? 1.3 : 0.2}] \
    rsp      1.5 \
    rrel     [expr {[llength $raws]+[llength $manual] ? 1.5 : 0.2}] \
    rrto     [expr {[llength $raws]+[llength $manual] ? 1.5 : 0.2}] \
    ac       [expr {$n==0 ? 3 : 0.4}] \
    commit   [expr {$n==0 && $txn ? 4 : 0.4}] \
    rollback [expr {$n==0 && $txn ? 2.5 : 0.4}] \
    close    0.6 \
    cfg      0.3 \
    intr     1.2 \
    tstore   0.4 \
    drop     0.4 \
    closetx  0.25 \
  ]
  # Each sequence leans towards one area, so that deep corners are met
  set x {}
  switch -- $::MODEL_PROFILE {
    manual {
      set x [list ac [expr {$txn ? 1 : 3}] begin 2 oc 1.5 \
          enter [expr {$n || $txn ? 1 : 0.3}] \
          commitr [expr {$n ? 0.2 : ([llength $M(pending)] ? 4 : 1.5)}] \
          rollbackr [expr {$n ? 0.2 : 1}] commit 1.5 rsp 0.5 rrel 0.5 rrto 0.5]
    }
    savepoints {
      set x {sp 2.5 spc 2 spr 2 rsp 2 rrel 1.5 rrto 2 commitr 0.3 rollbackr 0.3}
    }
    callbacks {
      set x {oc 2 ins 1.5 commitr 0.3 rollbackr 0.3 setrb 1.5}
    }
  }
  # ... and towards leaving states that have been seen enough
  if {$M(orphan) ne ""} { lappend x exit 2.5 oc 0.4 ins 0.6 }
  # ... and, in a doomed transaction, towards its ends
  if {$M(doomed)} { lappend x enter 2 rollback 2 commitr 2 ocsel 0 }
  if {$n==0 && $txn && [llength $M(pending)]} { lappend x commitr 2.5 }
  if {[llength $M(ready)]} { lappend x ac 2 enter 1.5 commit 2 }
  foreach {k f} $x { dict set w $k [expr {[dict get $w $k]*$f}] }
  set total 0
  foreach {k v} $w { set total [expr {$total+$v}] }
  set r [expr {rand()*$total}]
  foreach {k v} $w {
    set r [expr {$r-$v}]
    if {$r<0} break
  }
  switch -- $k {
    enter {
      set s [model_pick {1 1 1 1 1 0 0 2 '1'}]
      set d [expr {[model_chance 0.12] ? 1 : 0}]
      switch -- [model_rand 5] {
        0 - 1 - 2 { if {$d} { return [list enter $s 1] }; return enter }
        3 { return [list enter $s] }
        4 { return [list enter $s $d] }
      }
    }
    exit {
      return [model_pick {exit exit {exit 1} {exit 0} {exit 0} {exit 0} {exit '0'} {exit 2}}]
    }
    del { return [list del [expr {1+[model_rand 10]}]] }
    ins - insr {
      set rows {}
      set nrow [expr {1+[model_rand 3]}]
      for {set i 0} {$i<$nrow} {incr i} {
        set b -
        if {[model_chance 0.45]} { set b [incr ::MODEL_NEXT] }
        lappend rows [list [expr {1+[model_rand 10]}] $b]
      }
      return [list $k $rows]
    }
    intr {
      # An operation whose outcome under an interrupt is fixed (see the
      # header): not one that joins the application's transaction
      set join [expr {$M(txn) && !$M(joined)}]
      for {set k 0} {$k<50} {incr k} {
        set op [model_gen_op]
        switch -- [lindex $op 0] {
          exit - spc - spr - ac - commit - rollback { break }
          enter { if {!($join && $n==0)} break }
          sp { if {!$join} break }
        }
        set op {}
      }
      if {$op eq ""} { return {exit} }
      return [list [model_pick {intr prog}] $op]
    }
    tstore { return [list tstore [model_rand 3]] }
    drop { return drop }
    closetx { return closetx }
    oc {
      set robust [model_chance 0.35]
      set kinds {log log log log log log boom tins tins tcb blk blkok}
      if {$::MODEL_PROFILE eq "callbacks"} { set kinds {log log log boom tins tcb blk blkok} }
      switch -- [model_pick $kinds] {
        log  { return [list oc $robust log [incr ::MODEL_NEXT]] }
        boom { return [list oc $robust boom -1] }
        tins { return [list oc $robust tins [expr {1+[model_rand 12]}]] }
        tcb  { return [list oc $robust tcb [expr {1+[model_rand 12]}]] }
        blk  { return [list oc $robust blk [incr ::MODEL_NEXT]] }
        blkok { return [list oc $robust blkok [incr ::MODEL_NEXT]] }
      }
    }
    ocsel {
      set robust [model_chance 0.35]
      if {[model_chance 0.2]} { return [list ocsel $robust boom 0] }
      return [list ocsel $robust log [expr {1000*[incr ::MODEL_NEXT]}]]
    }
    setrb { return [list setrb [model_pick {0 1 1}]] }
    sp { return sp }
    spc - spr {
      if {[model_chance 0.05]} { return [list $k null] }
      if {[llength $manual] && [model_chance 0.75]} {
        return [list $k [model_pick $manual]]
      }
      return [list $k [expr {1+[model_rand [expr {$M(serial)+1}]]}]]
    }
    clean { return clean }
    begin { return {raw BEGIN} }
    commitr { return {raw COMMIT} }
    rollbackr { return {raw ROLLBACK} }
    rsp {
      if {[llength $manual] && [model_chance 0.1]} {
        return [list rsp #[model_pick $manual]]
      }
      if {$n && $::MODEL_STMTVTAB && [model_chance 0.1]} { return {rsp @} }
      return [list rsp [model_pick {r1 r1 r2 R1}]]
    }
    rrel - rrto {
      if {[llength $manual] && [model_chance 0.3]} {
        return [list $k #[model_pick $manual]]
      }
      if {$n && $::MODEL_STMTVTAB && [model_chance 0.15]} { return [list $k @] }
      if {[llength $raws] && [model_chance 0.85]} {
        return [list $k [model_pick $raws]]
      }
      return [list $k [model_pick {r1 r2 r3}]]
    }
    ac {
      if {$txn} { return [list ac [model_pick {0 1 1}]] }
      if {[llength $M(ready)]} { return [list ac [model_pick {0 1 1}]] }
      return [list ac [model_pick {0 0 1}]]
    }
    commit { return commit }
    rollback { return rollback }
    close { return close }
    cfg {
      return [model_pick {cfg {cfg immediate} {cfg DEFERRED} {cfg Exclusive} {cfg bogus}}]
    }
  }
}

# Generate and run sequence SEED.  Returns "" or {OPS STEP DIFF}: the
# operations up to the failing one.
proc model_run_seed {seed} {
  expr {srand($seed)}
  set ::MODEL_NEXT 0
  set ::MODEL_PROFILE [model_pick {mixed manual savepoints callbacks}]
  set ::MODEL_TRACE {}
  ext_new_db
  model_new_db
  set ops {}
  set len [expr {20+[model_rand 21]}]
  for {set i 1} {$i<=$len} {incr i} {
    if {$i==$len} { set op close } else { set op [model_gen_op] }
    lappend ops $op
    set d [model_step $op]
    if {$d ne ""} { return [list $ops $i $d] }
  }
  return ""
}

# The test of one seed: "ok", or a failure report.  The first few
# failures are shrunk and printed as a reproduction.
set ::MODEL_NREPORT 0
proc model_sequence {seed} {
  set r [model_run_seed $seed]
  if {$r eq ""} { return ok }
  lassign $r ops step diff
  if {[incr ::MODEL_NREPORT]>3} {
    return "seed $seed step $step: $diff"
  }
  set small [model_shrink $ops]
  lassign [model_check $small] sstep sdiff
  puts "seed $seed fails at step $step of [llength $ops]; shrunk to\
[llength $small] steps, first difference at step $sstep:"
  puts "  $sdiff"
  puts "  operations: $small"
  puts "  reproduction (savepoint ids and the blocks' savepoint name are random"
  puts "  per connection: use the id savepoint() returns and the name"
  puts "  SELECT sql FROM sqlite_stmt WHERE sql GLOB 'SAVEPOINT _a*' shows):"
  foreach line [split [model_repro $small] \n] { puts "    $line" }
  return "seed $seed step $step: $diff"
}
