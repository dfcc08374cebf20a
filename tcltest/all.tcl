# all.tcl -- run the test files, each in its own tclsh and directory, two
# at a time, and print "N passed, N failed, N skipped".  Exit 1 if any
# test failed or any file crashed (a file that ends without its RESULT
# line counts as one failure).
#
#   tclsh tcltest/all.tcl ?FILE.test ...?
#
# ATOMIC_SANITIZE=asan      preload the ASan+UBSan runtime
# ATOMIC_SANITIZE=valgrind  run each file under valgrind memcheck; any
#                           error or leak fails the file
# ATOMIC_JOBS=N             files run at once (default 2)
# ATOMIC_BUILDS=LIST        the builds each file runs against, in order
#                           (default "test release": atomic_test.so, which
#                           checks the state after every SQL function, then
#                           atomic.so as users get it, with the random
#                           model test scaled down to a tenth)

set testdir [file dirname [file normalize [info script]]]
set top [file dirname $testdir]
set tclsh [info nameofexecutable]

if {[llength $argv]} {
  set files {}
  foreach a $argv { lappend files [file join $testdir [file tail $a]] }
} else {
  set files [lsort [glob -directory $testdir *.test]]
}

set prefix {}
set sanitize ""
if {[info exists env(ATOMIC_SANITIZE)]} { set sanitize $env(ATOMIC_SANITIZE) }
switch -- $sanitize {
  asan {
    set asan [string trim [exec gcc -print-file-name=libasan.so]]
    set ubsan [string trim [exec gcc -print-file-name=libubsan.so]]
    set env(LD_PRELOAD) "$asan $ubsan"
    set env(ASAN_OPTIONS) "detect_leaks=1:abort_on_error=0:exitcode=98"
    set env(UBSAN_OPTIONS) "print_stacktrace=1:halt_on_error=1:exitcode=97"
    if {![info exists env(ATOMIC_SCALE)]} { set env(ATOMIC_SCALE) 0.2 }
  }
  valgrind {
    set prefix [list valgrind --tool=memcheck --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        --error-exitcode=99 --quiet --num-callers=30]
    if {![info exists env(ATOMIC_SCALE)]} { set env(ATOMIC_SCALE) 0.02 }
  }
  "" {}
  default { puts stderr "unknown ATOMIC_SANITIZE=$sanitize"; exit 2 }
}

set jobs 2
if {[info exists env(ATOMIC_JOBS)]} { set jobs $env(ATOMIC_JOBS) }
set builds {test release}
if {[info exists env(ATOMIC_BUILDS)]} { set builds $env(ATOMIC_BUILDS) }
set runs {}
foreach b $builds {
  foreach f $files { lappend runs [list $f $b] }
}

set nPass 0
set nFail 0
set nSkip 0
set failed {}
set running 0
set queue $runs
set t0 [clock milliseconds]

proc start_next {} {
  global queue running prefix tclsh testdir env builds
  if {![llength $queue]} return
  lassign [lindex $queue 0] f build
  set queue [lrange $queue 1 end]
  set name [file rootname [file tail $f]]
  if {$build ne [lindex $builds 0]} { append name "\[$build\]" }
  set dir [file join [file dirname $testdir] testdir $name]
  file delete -force $dir
  file mkdir $dir
  set env(ATOMIC_BUILD) $build
  set scale ""
  if {[info exists env(ATOMIC_SCALE)]} { set scale $env(ATOMIC_SCALE) }
  if {$build eq "release" && [llength $builds]>1} {
    set env(ATOMIC_SCALE) [expr {($scale eq "" ? 1.0 : $scale)*0.1}]
  }
  set cmd [concat $prefix [list $tclsh $f]]
  set here [pwd]
  cd $dir
  set chan [open "|$cmd 2>@1" r]
  cd $here
  if {$scale eq ""} { unset -nocomplain env(ATOMIC_SCALE) } else { set env(ATOMIC_SCALE) $scale }
  fconfigure $chan -blocking 0 -buffering line
  set ::out($chan) ""
  set ::start($chan) [clock milliseconds]
  fileevent $chan readable [list collect $chan $name]
  incr running
}

proc collect {chan name} {
  global running nPass nFail nSkip failed
  append ::out($chan) [read $chan]
  if {![eof $chan]} return
  fconfigure $chan -blocking 1
  set status 0
  if {[catch {close $chan} err opts]} {
    set status [lindex [dict get $opts -errorcode] end]
  }
  set out $::out($chan)
  set ms [expr {[clock milliseconds]-$::start($chan)}]
  set res ""
  foreach line [split $out \n] {
    if {[regexp {^RESULT (\d+) (\d+) (\d+)$} $line -> p f s]} { set res [list $p $f $s] }
  }
  foreach line [split $out \n] {
    if {$line eq "" || [string match "RESULT *" $line]} continue
    puts "$name: $line"
  }
  if {$res eq ""} {
    puts "$name: CRASHED (exit status $status, no RESULT line)"
    incr nFail
    lappend failed $name
  } else {
    lassign $res p f s
    incr nPass $p
    incr nFail $f
    incr nSkip $s
    if {$f>0 || ($status ne "" && $status ne "0" && $status ne "1")} {
      if {$f==0} {
        puts "$name: exit status $status (sanitizer or valgrind error)"
        incr nFail
      }
      lappend failed $name
    }
  }
  puts [format "%-24s %6d passed %4d failed %4d skipped  %6.1fs" $name \
      [expr {$res eq "" ? 0 : [lindex $res 0]}] \
      [expr {$res eq "" ? 1 : [lindex $res 1]}] \
      [expr {$res eq "" ? 0 : [lindex $res 2]}] [expr {$ms/1000.0}]]
  incr running -1
  start_next
  if {$running==0} { set ::done 1 }
}

for {set i 0} {$i<$jobs} {incr i} { start_next }
if {$running>0} { vwait ::done }

set secs [expr {([clock milliseconds]-$t0)/1000.0}]
if {[llength $failed]} { puts "failed files: [lsort $failed]" }
puts "time: ${secs}s"
if {$nPass+$nFail==0} {
  puts "no test ran"
  set nFail 1
}
set summary "$nPass passed, $nFail failed"
if {$nSkip} { append summary ", $nSkip skipped" }
puts $summary
exit [expr {$nFail>0}]
