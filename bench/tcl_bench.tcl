# tcl_bench.tcl -- the bench workloads through Tcl's "db transaction"
# (Debian's libsqlite3-tcl).  Tcl has no on_commit, so only the blocks.
#
#   tclsh tcl_bench.tcl CASE N WARM
#
# CASE: inner (a nested "db transaction {}" inside an open one: SAVEPOINT
# and RELEASE), outer_mem, outer_wal ("db transaction" around one INSERT).
# Prints "case=CASE ops=N ns=T" like the C drivers; only the measured
# phase is counted by callgrind (bench_start/bench_stop from tclctl.so).

set here [file dirname [file normalize [info script]]]
load [file join $here tclctl.so] Tclctl
package require sqlite3

lassign $argv case n warm

set path :memory:
if {[string match *_wal $case]} {
  if {[info exists env(BENCH_OUT)]} {
    set outdir $env(BENCH_OUT)
  } else {
    set outdir [file join $here out]
  }
  set path [file join $outdir $case-tcl-[pid].db]
  file delete $path $path-wal $path-shm
}
sqlite3 db $path
if {$path ne ":memory:"} {
  db eval {PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL}
}
db eval {CREATE TABLE t(x); CREATE TABLE log(x)}

proc inner {count base} {
  for {set i 0} {$i < $count} {incr i} {
    db transaction {}
  }
}

proc outer {count base} {
  for {set i $base} {$i < $base + $count} {incr i} {
    db transaction {
      db eval {INSERT INTO t VALUES($i)}
    }
  }
}

proc measure {fn} {
  global n warm
  $fn $warm [expr {-$warm}]
  set t0 [clock microseconds]
  bench_start
  $fn $n 0
  bench_stop
  return [expr {([clock microseconds] - $t0) * 1000}]
}

switch -- $case {
  inner {
    db transaction {
      set ns [measure inner]
    }
  }
  outer_mem - outer_wal {
    set ns [measure outer]
  }
  default {
    puts stderr "tcl_bench.tcl: unknown case $case"
    exit 1
  }
}
if {$case ne "inner" && [db onecolumn {SELECT count(*) FROM t}] != $n + $warm} {
  puts stderr "tcl_bench.tcl: t does not hold [expr {$n + $warm}] rows"
  exit 1
}
if {[catch {db eval {BEGIN; COMMIT}}]} {
  puts stderr "tcl_bench.tcl: a transaction was left open"
  exit 1
}
db close
if {$path ne ":memory:"} {
  file delete $path $path-wal $path-shm
}
puts "case=$case ops=$n ns=$ns"
