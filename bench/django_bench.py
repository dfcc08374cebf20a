"""django_bench.py -- the bench workloads through Django's transaction.atomic
and transaction.on_commit (Debian's python3-django, SQLite backend).

    /usr/bin/python3 django_bench.py CASE N WARM

CASE as in driver.c: inner, outer_mem, outer_wal, callback, batch.  The
database is in memory, or a WAL file with synchronous=FULL for outer_wal.
Raw SQL goes through connection.cursor(); a callback inserts through the
same cursor.  Prints "case=CASE ops=N ns=T" like the C drivers; only the
measured phase is counted by callgrind (bench_start/bench_stop of
benchctl.so, through ctypes).
"""
import ctypes
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    case, n, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ctl = ctypes.CDLL(os.path.join(HERE, 'benchctl.so'))

    path = ':memory:'
    if case.endswith('_wal'):
        outdir = os.environ.get('BENCH_OUT', os.path.join(HERE, 'out'))
        path = os.path.join(outdir, '%s-django-%d.db' % (case, os.getpid()))
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)

    import django
    from django.conf import settings
    settings.configure(
        DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3',
                               'NAME': path}},
        INSTALLED_APPS=[],
    )
    django.setup()
    from django.db import connection, transaction

    cur = connection.cursor()
    if path != ':memory:':
        cur.execute('PRAGMA journal_mode=WAL')
        cur.execute('PRAGMA synchronous=FULL')
    cur.execute('CREATE TABLE t(x)')
    cur.execute('CREATE TABLE log(x)')

    atomic = transaction.atomic
    on_commit = transaction.on_commit

    class Fail(Exception):
        pass

    def inner(count, base):
        for _ in range(count):
            with atomic():
                pass

    def outer(count, base):
        for i in range(base, base + count):
            with atomic():
                cur.execute('INSERT INTO t VALUES(%s)', [i])

    def callback(count, base):
        for i in range(base, base + count):
            with atomic():
                on_commit(lambda i=i: cur.execute(
                    'INSERT INTO log VALUES(%s)', [i]))

    def batch(count, base):
        with atomic():
            for i in range(count):
                try:
                    with atomic():
                        cur.execute('INSERT INTO t VALUES(%s)', [base + i])
                        on_commit(lambda i=base + i: cur.execute(
                            'INSERT INTO log VALUES(%s)', [i]))
                        if i % 10 == 9:
                            raise Fail()
                except Fail:
                    pass

    def measure(fn):
        fn(warm, -warm)
        t0 = time.perf_counter_ns()
        ctl.bench_start()
        fn(n, 0)
        ctl.bench_stop()
        return time.perf_counter_ns() - t0

    if case == 'inner':
        with atomic():
            ns = measure(inner)
    elif case in ('outer_mem', 'outer_wal'):
        ns = measure(outer)
    elif case == 'callback':
        ns = measure(callback)
    elif case == 'batch':
        ns = measure(batch)
    else:
        sys.exit('django_bench.py: unknown case %r' % case)

    def count(table):
        cur.execute('SELECT count(*) FROM %s' % table)
        return cur.fetchone()[0]

    def kept(k):
        return k - k // 10

    expect = {'outer_mem': {'t': warm + n}, 'outer_wal': {'t': warm + n},
              'callback': {'log': warm + n},
              'batch': {'t': kept(warm) + kept(n), 'log': kept(warm) + kept(n)},
              }.get(case, {})
    for table, rows in expect.items():
        if count(table) != rows:
            sys.exit('django_bench.py: %s holds %d rows, expected %d' % (
                table, count(table), rows))
    if not connection.get_autocommit() or connection.in_atomic_block:
        sys.exit('django_bench.py: a transaction was left open')
    connection.close()
    if path != ':memory:':
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
    print('case=%s ops=%d ns=%d' % (case, n, ns))


if __name__ == '__main__':
    main()
