# tester.tcl -- sourced by every test file: do_test and friends in the
# manner of SQLite's own test suite, plus what the atomic tests share.
#
#   do_test NAME SCRIPT EXPECTED     run SCRIPT, compare its result
#   do_execsql_test NAME SQL EXP     the rows of SQL on db, as a flat list
#   do_catchsql_test NAME SQL EXP    {0 ROWS} or {1 MESSAGE}
#   execsql SQL ?DB?, catchsql SQL ?DB?
#   errcode ?DB?                     SQLite's extended result code name of
#                                    the last error, e.g. SQLITE_BUSY
#   reset_db                         a fresh test.db as db, extension loaded
#   need_test_build NAME             skip the rest of the file (as test NAME)
#                                    unless the build under test is the test
#                                    build
#   load_atomic DB ?PATH?            load the extension through SQL
#   log_take                         sqlite3_log() messages since last call
#   trace_start ?DB?, trace_stop     the statements the extension ran in
#                                    between (nested statements only), with
#                                    its random names made stable:
#                                    atomic_SP for the block savepoint,
#                                    SID_x<n> for manual savepoint ids; the
#                                    test build's own check is left out
#   finish_test                      report and exit
#
# EXPECTED is compared exactly, unless it is /REGEXP/ or *GLOB* (SQLite's
# convention).  Each file runs in its own tclsh, in its own directory;
# finish_test prints "RESULT <passed> <failed> <skipped>" for the runner.
package require sqlite3

set ::TESTDIR [file dirname [file normalize [info script]]]
set ::TOP [file dirname $::TESTDIR]
# The build under test: "test" (default: atomic_test.so, which checks the
# state machine's invariant after every SQL function and has the fault
# functions) or "release" (atomic.so, as users get it)
set ::BUILD test
if {[info exists ::env(ATOMIC_BUILD)] && $::env(ATOMIC_BUILD) ne ""} {
  set ::BUILD $::env(ATOMIC_BUILD)
}
set ::RELEASEEXT [file join $::TOP atomic]
set ::TESTEXT [file join $::TOP atomic_test]
set ::EXT [expr {$::BUILD eq "release" ? $::RELEASEEXT : $::TESTEXT}]
set ::SCALE 1.0
if {[info exists ::env(ATOMIC_SCALE)]} { set ::SCALE $::env(ATOMIC_SCALE) }

load [file join $::TESTDIR atomictest.so] Atomictest
atomictest_log_start

array set ::TESTER {pass 0 fail 0 skip 0}

proc test_match {expected got} {
  if {[string length $expected]>1} {
    set f [string index $expected 0]
    set l [string index $expected end]
    if {$f eq "/" && $l eq "/"} {
      return [regexp -- [string range $expected 1 end-1] $got]
    }
    if {$f eq "*" && $l eq "*"} {
      return [string match $expected $got]
    }
  }
  return [expr {$expected eq $got}]
}

proc do_test {name script expected} {
  if {[catch {uplevel #0 $script} got]} {
    set got "TCL ERROR: $got"
  }
  if {[test_match $expected $got]} {
    incr ::TESTER(pass)
  } else {
    incr ::TESTER(fail)
    puts "! $name"
    puts "!   expected: \[$expected\]"
    puts "!   got:      \[$got\]"
  }
}

proc skip_test {name why} {
  incr ::TESTER(skip)
  puts "- $name skipped: $why"
}

proc execsql {sql {db db}} {
  uplevel #0 [list $db eval $sql]
}

proc catchsql {sql {db db}} {
  set rc [catch {uplevel #0 [list $db eval $sql]} msg]
  list $rc $msg
}

proc do_execsql_test {name sql expected} {
  do_test $name [list execsql $sql] $expected
}

proc do_catchsql_test {name sql expected} {
  do_test $name [list catchsql $sql] $expected
}

# The name of the extended result code of db's last error
proc errcode {{db db}} {
  set names {
    0 SQLITE_OK 1 SQLITE_ERROR 2 SQLITE_INTERNAL 5 SQLITE_BUSY
    6 SQLITE_LOCKED 7 SQLITE_NOMEM 8 SQLITE_READONLY 9 SQLITE_INTERRUPT
    10 SQLITE_IOERR 13 SQLITE_FULL 19 SQLITE_CONSTRAINT 20 SQLITE_MISMATCH
    21 SQLITE_MISUSE 4 SQLITE_ABORT 787 SQLITE_CONSTRAINT_FOREIGNKEY
    1299 SQLITE_CONSTRAINT_NOTNULL 2067 SQLITE_CONSTRAINT_UNIQUE
    1555 SQLITE_CONSTRAINT_PRIMARYKEY 275 SQLITE_CONSTRAINT_CHECK
    1811 SQLITE_CONSTRAINT_TRIGGER 516 SQLITE_ABORT_ROLLBACK
    531 SQLITE_CONSTRAINT_COMMITHOOK 3338 SQLITE_IOERR_NOMEM
    778 SQLITE_IOERR_WRITE 1034 SQLITE_IOERR_FSYNC
    517 SQLITE_BUSY_SNAPSHOT 261 SQLITE_BUSY_RECOVERY
  }
  set c [atomictest_errcode $db]
  if {[dict exists $names $c]} { return [dict get $names $c] }
  return $c
}

proc forcedelete {args} {
  foreach f $args {
    foreach g [list $f $f-journal $f-wal $f-shm] { file delete -force $g }
  }
}

proc load_atomic {db {path ""}} {
  if {$path eq ""} { set path $::EXT }
  $db enable_load_extension 1
  $db eval { SELECT load_extension($path) }
}

proc reset_db {{path ""}} {
  catch { db close }
  forcedelete test.db
  sqlite3 db test.db
  load_atomic db $path
}

proc trace_start {{db db}} {
  set ::TRACE {}
  set ::TRACEDB $db
  $db trace trace_cb
}
proc trace_cb {sql} { lappend ::TRACE $sql }
proc trace_stop {} {
  $::TRACEDB trace {}
  set res {}
  foreach sql $::TRACE {
    if {![string match "-- *" $sql]} continue
    set sql [string range $sql 3 end]
    # The test build's state check opens and releases this savepoint
    if {$sql in {{SAVEPOINT atomic_probe} {RELEASE atomic_probe}}} continue
    regsub -all {_a[0-9a-f]{4}} $sql atomic_SP sql
    regsub -all {s[0-9a-f]{8}_x} $sql SID_x sql
    lappend res $sql
  }
  set res
}

# A manual savepoint id with its random prefix made stable (SID_x<n>)
proc sid {id} {
  regsub {^s[0-9a-f]{8}_x} $id SID_x id
  set id
}

# Run a Python script with Debian's /usr/bin/python3 (its sqlite3 module
# can load extensions), passing the extension's path as sys.argv[1].
# Returns its output.  Under ASan, leak detection is off for the child:
# the interpreter's own memory at exit is not the extension's.
set ::PYTHON /usr/bin/python3
proc run_python {script} {
  set f [open py_[pid].py w]
  puts $f $script
  close $f
  child_exec $::PYTHON py_[pid].py $::EXT
}

# exec for another language's interpreter: under ASan, leak detection is
# off for it, since its own memory at exit is not the extension's
proc child_exec {args} {
  set env {}
  if {[info exists ::env(ASAN_OPTIONS)]} {
    set env [list env "ASAN_OPTIONS=$::env(ASAN_OPTIONS):detect_leaks=0"]
  }
  exec {*}$env {*}$args
}

proc need_test_build {name} {
  if {$::BUILD ne "test"} {
    skip_test $name "needs the test build (ATOMIC_BUILD=test)"
    finish_test
  }
}

proc log_take {} {
  atomictest_log_take
}

proc finish_test {} {
  catch { db close }
  puts "RESULT $::TESTER(pass) $::TESTER(fail) $::TESTER(skip)"
  exit [expr {$::TESTER(fail)>0}]
}
