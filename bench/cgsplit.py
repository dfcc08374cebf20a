"""cgsplit.py -- where the instructions of a callgrind run go, per
operation: self cost by object (the extension, libsqlite3, libc, the
driver) and the top functions by self cost.

    /usr/bin/python3 cgsplit.py FILE OPS [FLOOR_FILE FLOOR_OPS]

FILE is a callgrind.out file, OPS the operations it measured.  Self cost
is what a function executes itself, without its callees; the sums over
objects add up to callgrind's total.  With the floor's file too, it also
lists where ours spends more than the floor, function by function.
"""
import collections
import os
import re
import sys


def parse(path):
    """{(object, function): self Ir}, {(object, function): inclusive Ir}
    and the total."""
    names = {'ob': {}, 'fn': {}, 'cob': {}, 'cfn': {}, 'fl': {}, 'fi': {},
             'fe': {}, 'cfi': {}}
    shared = {'cob': 'ob', 'cfn': 'fn', 'fi': 'fl', 'fe': 'fl', 'cfi': 'fl'}
    cost = collections.Counter()
    incl = collections.Counter()
    edges = collections.Counter()   # (caller, callee): inclusive Ir
    ob = fn = cfn = None
    skip_next = False
    total = None
    name_re = re.compile(r'^\((\d+)\)(?: (.*))?$')

    def name(kind, text):
        table = names[shared.get(kind, kind)]
        m = name_re.match(text)
        if not m:
            return text
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), '?')

    with open(path) as fh:
        for line in fh:
            line = line.rstrip('\n')
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in '+-*':
                parts = line.split()
                if len(parts) >= 2:
                    incl[(ob, fn)] += int(parts[1])
                    if not skip_next:
                        cost[(ob, fn)] += int(parts[1])
                    else:
                        edges[(fn, cfn)] += int(parts[1])
                skip_next = False
                continue
            key, _, val = line.partition('=')
            if key == 'ob':
                ob = name('ob', val)
            elif key == 'fn':
                fn = name('fn', val)
            elif key == 'cfn':
                cfn = name('cfn', val)
            elif key in names:
                name(key, val)
            elif key == 'calls':
                skip_next = True
            elif line.startswith('totals:'):
                total = int(line.split()[1])
    parse.edges = edges
    return cost, incl, total


def per_function(cost, ops):
    """{function: self Ir per op}, the primes of recursion merged."""
    out = collections.Counter()
    for (ob, fn), v in cost.items():
        out[(fn or '?').split("'")[0]] += v / ops
    return out


def main():
    path, ops = sys.argv[1], int(sys.argv[2])
    top = 25
    cost, incl, total = parse(path)
    by_ob = collections.Counter()
    for (ob, fn), v in cost.items():
        by_ob[os.path.basename(ob or '?')] += v
    s = sum(cost.values())
    print('%s: %s instructions, %d ops: %.0f per op (self costs sum to %s)'
          % (os.path.basename(path), '{:,}'.format(total or 0), ops,
             (total or 0) / ops, '{:,}'.format(s)))
    print('  per op by object (self):')
    for ob, v in by_ob.most_common():
        if v / ops >= 0.5:
            print('    %9.1f  %s' % (v / ops, ob))
    print('  top functions by self cost, per op:')
    for (ob, fn), v in cost.most_common(top):
        print('    %9.1f  %-40s %s' % (v / ops, fn,
                                       os.path.basename(ob or '?')))
    edges = parse.edges
    ext = collections.Counter()
    ext_self = collections.Counter()
    for (ob, fn), v in incl.items():
        if 'atomic' in os.path.basename(ob or ''):
            ext[fn] += v
            ext_self[fn] += cost[(ob, fn)]
    if ext:
        print('  extension functions, inclusive (callees too), per op, and '
              'their callees:')
        for fn, v in ext.most_common(top):
            if v / ops < 0.5:
                continue
            print('    %9.1f  %-40s self %.1f' % (v / ops, fn,
                                                  ext_self[fn] / ops))
            callees = collections.Counter()
            for (caller, callee), c in edges.items():
                if caller == fn:
                    callees[callee] += c
            for callee, c in callees.most_common(6):
                if c / ops >= 1:
                    print('      %9.1f    > %s' % (c / ops, callee))
    if len(sys.argv) > 4:
        fcost, _, ftotal = parse(sys.argv[3])
        fops = int(sys.argv[4])
        a, b = per_function(cost, ops), per_function(fcost, fops)
        delta = {fn: a.get(fn, 0) - b.get(fn, 0) for fn in set(a) | set(b)}
        print('  ours - floor, per op: %.0f - %.0f = %.0f; by function:' % (
            total / ops, ftotal / fops, total / ops - ftotal / fops))
        for fn, d in sorted(delta.items(), key=lambda x: -abs(x[1]))[:top]:
            if abs(d) >= 0.5:
                print('    %+9.1f  %s' % (d, fn))


if __name__ == '__main__':
    main()
