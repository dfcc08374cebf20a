#!/bin/sh
# coverage.sh -- line and branch coverage of ext/ from gcov data.
#
#   tool/coverage.sh OBJDIR
#
# Runs gcov on every ext/*.c whose objects (and .gcda files) are in
# OBJDIR, writes the annotated sources to OBJDIR/*.gcov, and prints one
# line per file and a total: lines executed, and branches taken at least
# once.  Every line of ext/ that never ran is listed after the table.
set -e
objdir=$1
rm -f "$objdir"/*.gcov
for src in ext/*.c; do
  gcov -b -c -o "$objdir" "$src" >/dev/null 2>&1 || true
done
mv *.gcov "$objdir"/
cd "$objdir"
awk '
function flush() {
  if (file != "") {
    printf "%-12s %5d/%-5d lines %6.2f%%   %5d/%-5d branches %6.2f%%\n", \
      file, lx, ln, ln ? 100*lx/ln : 100, bt, bn, bn ? 100*bt/bn : 100
    tlx += lx; tln += ln; tbt += bt; tbn += bn
  }
}
FNR == 1 { flush(); file = FILENAME; sub(/\.gcov$/, "", file); lx = ln = bt = bn = 0 }
/^ *#####:/ {
  ln++
  split($0, a, ":")
  src = substr($0, length(a[1]) + length(a[2]) + 3)
  gsub(/^ +/, "", a[2])
  miss[++nmiss] = file ":" a[2] ": " src
  next
}
/^ *[0-9]+\*?:/ { ln++; lx++; next }
/^branch/ { bn++; if ($3 == "taken" && $4+0 > 0) bt++; next }
END {
  flush()
  printf "%-12s %5d/%-5d lines %6.2f%%   %5d/%-5d branches %6.2f%%\n", \
    "total", tlx, tln, tln ? 100*tlx/tln : 100, tbt, tbn, tbn ? 100*tbt/tbn : 100
  if (nmiss) print "lines never run:"
  for (i = 1; i <= nmiss; i++) print "  " miss[i]
}' $(ls *.c.gcov)
