# The Python package's own contract, beyond Django's tests: loading, the
# transaction modes of Python's sqlite3 it refuses, executescript() and
# other commits behind a block's back, exceptions that go through a block
# unchanged, callables in order with SQL callbacks, discarded callables that
# leave nothing behind, robust failures on the logger, manual mode, pending().
# SPDX-License-Identifier: MIT
import gc
import importlib.metadata
import json
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import unittest
import weakref

import sqlite_atomic
from sqlite_atomic import (
    ConnectionModeError, atomic, commit, depth, get_rollback, load,
    loadable_path, on_commit, on_commit_sql, pending, rollback, savepoint,
    savepoint_rollback, set_autocommit, set_rollback,
)

COMMITTED_OUTSIDE = ("atomic_exit(): the transaction was committed outside "
                     "of the 'atomic' block")
ROLLED_BACK_OUTSIDE = ("atomic_exit(): the transaction was rolled back "
                       "outside of the 'atomic' block")
FAILED_AFTER_COMMIT = "on_commit callback failed after commit:"
HAS_AUTOCOMMIT = hasattr(sqlite3.Connection, "autocommit")     # 3.12+


class Base(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.path = os.path.join(self.tmp, "test.db")
        self.conn = self.connect()
        load(self.conn)
        self.conn.execute("CREATE TABLE t(a)")
        self.conn.execute("CREATE TABLE log(x)")

    def connect(self, **kw):
        kw.setdefault("isolation_level", None)
        conn = sqlite3.connect(self.path, **kw)
        self.addCleanup(conn.close)
        return conn

    def rows(self, table="t"):
        return [r[0] for r in self.conn.execute(
            "SELECT * FROM %s ORDER BY rowid" % table)]

    def registry(self, conn=None):
        state = sqlite_atomic._states.get(id(conn or self.conn))
        return {} if state is None else state.registry


class LoadTests(Base):

    def test_version_is_the_extension_version(self):
        ext = self.conn.execute("SELECT atomic_version()").fetchone()[0]
        self.assertEqual(sqlite_atomic.__version__, ext)
        self.assertEqual(importlib.metadata.version("sqlite-atomic"), ext)

    def test_loadable_path_is_inside_the_installed_package(self):
        path = loadable_path()
        self.assertEqual(os.path.basename(path), "atomic.so")
        self.assertEqual(os.path.dirname(path),
                         os.path.dirname(sqlite_atomic.__file__))
        self.assertTrue(os.path.isfile(path))
        self.assertIn("site-packages", path)
        # It loads by hand, too
        conn = self.connect()
        conn.enable_load_extension(True)
        conn.load_extension(path)
        self.assertEqual(conn.execute("SELECT atomic_depth()").fetchone(), (0,))

    def test_load_leaves_extension_loading_disabled(self):
        with self.assertRaisesRegex(sqlite3.OperationalError, "not authorized"):
            self.conn.execute("SELECT load_extension(?)", (loadable_path(),))

    def test_load_twice_keeps_blocks_and_callables(self):
        done = []
        with atomic(self.conn):
            on_commit(self.conn, done.append, "kept")
            load(self.conn)
            self.assertEqual(depth(self.conn), 1)
            self.assertEqual(done, [])
        self.assertEqual(done, ["kept"])

    def test_closed_connection(self):
        conn = self.connect()
        conn.close()
        with self.assertRaisesRegex(sqlite3.ProgrammingError,
                                    "Cannot operate on a closed database"):
            load(conn)

    def test_decorator_needs_the_connection(self):
        with self.assertRaisesRegex(TypeError, r"@atomic\(conn\), not @atomic"):
            @atomic
            def f():
                pass


class ModeTests(Base):
    """Python's sqlite3 begins transactions by itself unless
    isolation_level is None (or, on 3.12+, autocommit=True): refused."""

    def expected(self, fname, level):
        default = " (Python's default)" if level == "" else ""
        return (
            "sqlite_atomic.%s refused: with isolation_level=%r%s, sqlite3 "
            "begins a transaction by itself before INSERT, UPDATE and DELETE; "
            "a block opened after such a statement cannot commit, and its "
            "on_commit() callbacks would wait for a commit the extension "
            "never sees and be lost at close. Open the connection with "
            "isolation_level=None (Python 3.12+: autocommit=True), or set "
            "conn.isolation_level = None." % (fname, level, default))

    def test_load_refuses_every_isolation_level_but_none(self):
        for level in ("", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            conn = self.connect(isolation_level=level)
            with self.assertRaises(ConnectionModeError) as cm:
                load(conn)
            self.assertEqual(str(cm.exception), self.expected("load()", level))
            self.assertIsInstance(cm.exception, sqlite3.ProgrammingError)
            # Nothing was loaded
            with self.assertRaisesRegex(sqlite3.OperationalError,
                                        "no such function: atomic_version"):
                conn.execute("SELECT atomic_version()")

    def test_default_isolation_level_refused_at_atomic_and_on_commit(self):
        # The trap: an INSERT under the default isolation level begins a
        # transaction, and every later block would be a savepoint in it.
        self.conn.isolation_level = ""
        self.conn.execute("INSERT INTO t VALUES(1)")
        self.assertTrue(self.conn.in_transaction)
        with self.assertRaises(ConnectionModeError) as cm:
            with atomic(self.conn):
                self.fail("entered")
        self.assertEqual(str(cm.exception), self.expected("atomic()", ""))
        with self.assertRaises(ConnectionModeError) as cm:
            on_commit(self.conn, print)
        self.assertEqual(str(cm.exception), self.expected("on_commit()", ""))
        self.assertEqual(depth(self.conn), 0)
        self.assertEqual(pending(self.conn), [])
        self.assertEqual(self.registry(), {})
        self.conn.rollback()
        # Back to isolation_level=None: works again
        self.conn.isolation_level = None
        done = []
        with atomic(self.conn):
            on_commit(self.conn, done.append, 1)
        self.assertEqual(done, [1])

    def test_mode_decision_for_python_312_autocommit(self):
        # The decision itself, with stand-ins for 3.12's attribute
        class Conn:
            isolation_level = ""
        c = Conn()
        c.autocommit = True
        self.assertIsNone(sqlite_atomic._mode_problem(c))
        c.autocommit = False
        self.assertEqual(
            sqlite_atomic._mode_problem(c),
            "with autocommit=False, sqlite3 keeps a transaction open at all "
            "times; blocks inside it cannot commit, and their on_commit() "
            "callbacks would wait for a commit the extension never sees and "
            "be lost at close. Open the connection with autocommit=True, or "
            "set conn.autocommit = True")
        c.autocommit = -1        # sqlite3.LEGACY_TRANSACTION_CONTROL
        self.assertIn("with isolation_level=''", sqlite_atomic._mode_problem(c))
        c.isolation_level = None
        self.assertIsNone(sqlite_atomic._mode_problem(c))

    @unittest.skipUnless(HAS_AUTOCOMMIT, "Python 3.12+ (autocommit)")
    def test_autocommit_true_works_and_executescript_stays_in_the_block(self):
        conn = sqlite3.connect(self.path, autocommit=True)
        self.addCleanup(conn.close)
        load(conn)
        done = []
        with atomic(conn) as block:
            conn.execute("INSERT INTO t VALUES(1)")
            conn.executescript("INSERT INTO t VALUES(2); INSERT INTO t VALUES(3);")
            on_commit(conn, done.append, "after")
        self.assertTrue(block.kept)
        self.assertEqual(done, ["after"])
        self.assertEqual(self.rows(), [1, 2, 3])

    @unittest.skipUnless(HAS_AUTOCOMMIT, "Python 3.12+ (autocommit)")
    def test_autocommit_false_refused(self):
        conn = sqlite3.connect(self.path, autocommit=False)
        self.addCleanup(conn.close)
        with self.assertRaisesRegex(ConnectionModeError,
                                    r"^sqlite_atomic.load\(\) refused: with "
                                    r"autocommit=False"):
            load(conn)


class CommittedBehindTheBlockTests(Base):
    """Python's sqlite3 commits by itself in executescript() (3.11, and
    3.12+ unless autocommit=True), conn.commit(), `with conn:`: the block
    learns it and says so."""

    def check_orphan(self, cm, blocks=1):
        err = cm.exception
        self.assertTrue(str(err).startswith(COMMITTED_OUTSIDE), str(err))
        if sys.version_info >= (3, 11):
            # The hint, then the error of each enclosing block it went
            # through, attached to it
            self.assertEqual(err.__notes__, [sqlite_atomic._COMMIT_HINT] + [
                "sqlite_atomic: %s" % err] * (blocks - 1))
            self.assertIn("executescript()", err.__notes__[0])
            self.assertIn("conn.commit()", err.__notes__[0])
        self.assertEqual(depth(self.conn), 0)

    def test_executescript_commits_the_block(self):
        done = []
        with self.assertRaises(sqlite3.OperationalError) as cm:
            with atomic(self.conn) as block:
                self.conn.execute("INSERT INTO t VALUES(1)")
                on_commit(self.conn, done.append, "lost")
                self.conn.executescript("INSERT INTO t VALUES(2);")
                self.assertFalse(self.conn.in_transaction)
        self.check_orphan(cm)
        self.assertFalse(block.kept)
        # Committed by executescript(), so the rows stay; the callback was
        # discarded with the extension's transaction, and nothing is left
        self.assertEqual(self.rows(), [1, 2])
        self.assertEqual(done, [])
        self.assertEqual(self.registry(), {})

    def test_conn_commit_inside_a_block(self):
        with self.assertRaises(sqlite3.OperationalError) as cm:
            with atomic(self.conn):
                with atomic(self.conn):
                    self.conn.execute("INSERT INTO t VALUES(1)")
                    self.conn.commit()
        self.check_orphan(cm, blocks=2)
        self.assertEqual(self.rows(), [1])

    def test_with_conn_inside_a_block(self):
        with self.assertRaises(sqlite3.OperationalError) as cm:
            with atomic(self.conn):
                with self.conn:
                    self.conn.execute("INSERT INTO t VALUES(1)")
        self.check_orphan(cm)
        self.assertEqual(self.rows(), [1])


class ExceptionTests(Base):
    """An exception leaving a block rolls it back and propagates unchanged;
    the extension's own error, if any, is attached to it."""

    def test_exception_propagates_unchanged(self):
        exc = KeyError("mine")
        with self.assertRaises(KeyError) as cm:
            with atomic(self.conn) as block:
                self.conn.execute("INSERT INTO t VALUES(1)")
                raise exc
        self.assertIs(cm.exception, exc)
        self.assertEqual(str(cm.exception), "'mine'")
        self.assertFalse(hasattr(exc, "sqlite_atomic_error"))
        self.assertFalse(hasattr(exc, "__notes__"))
        self.assertIsNone(exc.__cause__)
        self.assertFalse(block.kept)
        self.assertEqual(self.rows(), [])

    def test_base_exception_rolls_back_too(self):
        with self.assertRaises(KeyboardInterrupt):
            with atomic(self.conn):
                self.conn.execute("INSERT INTO t VALUES(1)")
                raise KeyboardInterrupt
        self.assertEqual(self.rows(), [])
        self.assertEqual(depth(self.conn), 0)

    def test_original_exception_wins_over_a_rollback_behind_the_block(self):
        exc = ValueError("the application's error")
        with self.assertRaises(ValueError) as cm:
            with atomic(self.conn):
                with atomic(self.conn) as inner:
                    self.conn.execute("INSERT INTO t VALUES(1)")
                    self.conn.rollback()
                    raise exc
        self.assertIs(cm.exception, exc)
        self.assertEqual(str(exc), "the application's error")
        err = exc.sqlite_atomic_error
        self.assertIsInstance(err, sqlite3.OperationalError)
        self.assertTrue(str(err).startswith(ROLLED_BACK_OUTSIDE), str(err))
        if sys.version_info >= (3, 11):
            # One note per block the exception left
            self.assertEqual(exc.__notes__, ["sqlite_atomic: %s" % err] * 2)
        self.assertFalse(inner.kept)
        self.assertEqual(depth(self.conn), 0)
        self.assertEqual(self.rows(), [])

    def test_rollback_flag_is_visible_to_the_caller(self):
        with atomic(self.conn) as outer:
            self.conn.execute("INSERT INTO t VALUES(1)")
            with atomic(self.conn) as inner:
                self.conn.execute("INSERT INTO t VALUES(2)")
                set_rollback(self.conn, True)
            self.assertFalse(inner.kept)
            self.assertFalse(get_rollback(self.conn))
            self.assertIsNone(outer.kept)
        self.assertTrue(outer.kept)
        self.assertEqual(self.rows(), [1])
        with atomic(self.conn) as block:
            self.conn.execute("INSERT INTO t VALUES(3)")
            set_rollback(self.conn, True)
        self.assertFalse(block.kept)
        self.assertEqual(self.rows(), [1])

    def test_decorator_returns_the_value_and_rolls_back_on_exception(self):
        deco = atomic(self.conn)

        @deco
        def add(x):
            self.conn.execute("INSERT INTO t VALUES(?)", (x,))
            if x < 0:
                raise ValueError(x)
            return x * 10

        self.assertEqual(add(1), 10)
        with self.assertRaises(ValueError):
            add(-1)
        self.assertEqual(self.rows(), [1])


class CallableTests(Base):
    """Python callables run after the outermost commit, in the extension's
    queue."""

    def log(self, x):
        self.conn.execute("INSERT INTO log VALUES(?)", (x,))

    def test_in_order_with_sql_callbacks(self):
        with atomic(self.conn):
            on_commit(self.conn, self.log, "py1")
            self.assertTrue(on_commit_sql(
                self.conn, "INSERT INTO log VALUES(?1)", "sql2"))
            with atomic(self.conn):
                on_commit(self.conn, self.log, "py3")
                self.conn.execute(
                    "SELECT on_commit('INSERT INTO log VALUES(?1)', 'sql4')")
            on_commit(self.conn, self.log, "py5")
            self.assertEqual(self.rows("log"), [])
        self.assertEqual(self.rows("log"), ["py1", "sql2", "py3", "sql4", "py5"])
        self.assertEqual(self.registry(), {})

    def test_arguments_are_passed_as_given(self):
        got = []
        obj = object()
        with atomic(self.conn):
            on_commit(self.conn, lambda *a: got.append(a), 1, "two", obj, None)
        self.assertEqual(got, [(1, "two", obj, None)])
        self.assertIs(got[0][2], obj)

    def test_runs_at_once_outside_a_block(self):
        got = []
        on_commit(self.conn, got.append, "now")
        self.assertEqual(got, ["now"])
        self.assertFalse(on_commit_sql(self.conn, "INSERT INTO log VALUES(1)"))
        self.assertEqual(self.rows("log"), [1])

    def test_plain_failure_at_once_raises_the_callables_exception(self):
        exc = ValueError("at once")

        def fail():
            raise exc

        with self.assertRaises(ValueError) as cm:
            on_commit(self.conn, fail)
        self.assertIs(cm.exception, exc)
        self.assertIsInstance(exc.sqlite_atomic_error, sqlite3.OperationalError)
        self.assertEqual(self.registry(), {})

    def test_plain_failure_after_commit(self):
        exc = ValueError("boom")

        def fail():
            raise exc

        with self.assertRaises(ValueError) as cm:
            with atomic(self.conn) as block:
                self.conn.execute("INSERT INTO t VALUES(1)")
                on_commit(self.conn, self.log, "before")
                on_commit(self.conn, fail)
                on_commit(self.conn, self.log, "after")
                on_commit_sql(self.conn, "INSERT INTO log VALUES('sql after')")
        # The callable's own exception, as in Django
        self.assertIs(cm.exception, exc)
        err = exc.sqlite_atomic_error
        self.assertIsInstance(err, sqlite3.OperationalError)
        self.assertTrue(str(err).startswith(FAILED_AFTER_COMMIT), str(err))
        self.assertIn("the transaction was committed; 2 later callbacks were "
                      "not run", str(err))
        self.assertEqual(err.sqlite_errorname, "SQLITE_ERROR")
        if sys.version_info >= (3, 11):
            self.assertEqual(exc.__notes__, ["sqlite_atomic: %s" % err])
        # Committed; the later callbacks were discarded and left nothing
        self.assertTrue(block.kept)
        self.assertEqual(self.rows(), [1])
        self.assertEqual(self.rows("log"), ["before"])
        self.assertEqual(depth(self.conn), 0)
        self.assertEqual(self.registry(), {})

    def test_keyboard_interrupt_in_a_callable(self):
        def interrupt():
            raise KeyboardInterrupt

        with self.assertRaises(KeyboardInterrupt):
            with atomic(self.conn):
                on_commit(self.conn, interrupt)
                on_commit(self.conn, self.log, "after")
        self.assertEqual(self.rows("log"), [])
        self.assertEqual(self.registry(), {})

    def test_robust_failure_is_logged_and_the_run_goes_on(self):
        def fail():
            raise ValueError("robust boom")

        with self.assertLogs("sqlite_atomic", logging.ERROR) as cm:
            with atomic(self.conn):
                on_commit(self.conn, self.log, 1)
                on_commit(self.conn, fail, robust=True)
                on_commit(self.conn, self.log, 3)
        self.assertEqual(self.rows("log"), [1, 3])
        self.assertEqual(len(cm.records), 1)
        rec = cm.records[0]
        self.assertEqual(rec.name, "sqlite_atomic")
        self.assertEqual(rec.levelno, logging.ERROR)
        self.assertEqual(
            rec.getMessage(),
            "Error calling CallableTests.test_robust_failure_is_logged_and_the_"
            "run_goes_on.<locals>.fail in on_commit() during transaction "
            "(robust boom).")
        self.assertEqual(str(rec.exc_info[1]), "robust boom")

    def test_robust_keyboard_interrupt_propagates_after_the_run(self):
        def interrupt():
            raise KeyboardInterrupt

        with self.assertRaises(KeyboardInterrupt):
            with atomic(self.conn) as block:
                on_commit(self.conn, interrupt, robust=True)
                on_commit(self.conn, self.log, "after")
        # A robust callback cannot stop the extension's run: the later
        # callbacks ran, then the interrupt goes on
        self.assertEqual(self.rows("log"), ["after"])
        self.assertTrue(block.kept)

    def test_robust_interrupt_wins_over_a_later_failure(self):
        def interrupt():
            raise KeyboardInterrupt

        def fail():
            raise ValueError("later")

        with self.assertRaises(KeyboardInterrupt):
            with atomic(self.conn):
                on_commit(self.conn, interrupt, robust=True)
                on_commit(self.conn, self.log, "between")
                on_commit(self.conn, fail)
                on_commit(self.conn, self.log, "after")
        self.assertEqual(self.rows("log"), ["between"])
        self.assertEqual(self.registry(), {})

    def test_failures_of_robust_sql_seen_through_a_callable(self):
        # sqlite3_log() does not reach Python: queue the SQL through a
        # robust callable to have its failure logged
        self.conn.execute("CREATE TABLE gone(x)")
        with self.assertLogs("sqlite_atomic", logging.ERROR) as cm:
            with atomic(self.conn):
                on_commit(self.conn, self.conn.execute,
                          "INSERT INTO gone VALUES(?)", (1,), robust=True)
                self.conn.execute("DROP TABLE gone")
        self.assertEqual(len(cm.records), 1)
        self.assertEqual(cm.records[0].getMessage(),
                         "Error calling Connection.execute in on_commit() "
                         "during transaction (no such table: gone).")

    def test_pending_lists_callables_and_sql(self):
        f = self.log
        with atomic(self.conn):
            on_commit(self.conn, f, "a", 2)
            with atomic(self.conn):
                on_commit_sql(self.conn, "INSERT INTO log VALUES(?1)", 1.5,
                              robust=True)
                on_commit(self.conn, f, robust=True)
                got = pending(self.conn)
            set_rollback(self.conn, True)
        state_sql = sqlite_atomic._states[id(self.conn)].sql
        self.assertEqual(got, [
            (1, state_sql, ("a", 2), 1, False, False, f),
            (2, "INSERT INTO log VALUES(?1)", [1.5], 2, True, False, None),
            (3, state_sql, (), 2, True, False, f),
        ])
        self.assertRegex(state_sql,
                         r"^SELECT sqlite_atomic_call_[0-9a-f]{16}\(\?1\)$")
        self.assertEqual(pending(self.conn), [])

    def test_discarded_with_their_block_savepoint_or_transaction(self):
        with atomic(self.conn):
            on_commit(self.conn, self.log, 1)
            try:
                with atomic(self.conn):
                    on_commit(self.conn, self.log, "inner rolled back")
                    raise ValueError
            except ValueError:
                pass
            sid = savepoint(self.conn)
            on_commit(self.conn, self.log, "after the savepoint")
            savepoint_rollback(self.conn, sid)
            on_commit(self.conn, self.log, 2)
            self.assertEqual([p.args for p in pending(self.conn)], [(1,), (2,)])
        self.assertEqual(self.rows("log"), [1, 2])
        self.assertEqual(self.registry(), {})

    def test_registry_stays_bounded_with_discarded_callables(self):
        most = 0
        with atomic(self.conn):
            for i in range(3000):
                try:
                    with atomic(self.conn):
                        on_commit(self.conn, self.log, i)
                        if i % 3:
                            raise ValueError(i)
                except ValueError:
                    pass
                most = max(most, len(self.registry()))
            live = len(pending(self.conn))
            self.assertEqual(live, 1000)
            self.assertLessEqual(len(self.registry()), 2 * live + 257)
        self.assertLessEqual(most, 2 * 1000 + 257)
        self.assertEqual(self.rows("log"), list(range(0, 3000, 3)))
        self.assertEqual(self.registry(), {})

    def test_registry_bounded_when_nothing_is_kept(self):
        most = 0
        with atomic(self.conn):
            for i in range(2000):
                try:
                    with atomic(self.conn):
                        on_commit(self.conn, self.log, i)
                        raise ValueError(i)
                except ValueError:
                    pass
                most = max(most, len(self.registry()))
        self.assertEqual(most, 256)
        self.assertEqual(self.rows("log"), [])
        self.assertEqual(self.registry(), {})

    def test_discarded_callable_is_freed(self):
        class Mail:
            def __call__(self):
                raise AssertionError("must not run")
        mail = Mail()
        ref = weakref.ref(mail)
        with atomic(self.conn):
            with atomic(self.conn) as inner:
                on_commit(self.conn, mail)
                set_rollback(self.conn, True)
        del mail
        gc.collect()
        self.assertFalse(inner.kept)
        self.assertIsNone(ref())

    def test_closing_with_queued_callables_runs_nothing_and_frees_them(self):
        conn = self.connect()
        load(conn)

        class Mail:
            def __call__(self):
                raise AssertionError("must not run")
        mail = Mail()
        ref = weakref.ref(mail)
        key = id(conn)
        state_ref = weakref.ref(sqlite_atomic._states[key])
        atomic(conn).__enter__()
        on_commit(conn, mail)
        del mail
        conn.close()
        gc.collect()
        self.assertIsNone(ref())
        self.assertIsNone(state_ref())
        self.assertNotIn(key, sqlite_atomic._states)

    def test_state_of_a_dead_connection_is_replaced(self):
        # An id can be reused by a new connection while an old state lives
        # on: the first on_commit() notices and binds a fresh one
        stale = sqlite_atomic._State()
        sqlite_atomic._states[id(self.conn)] = stale
        done = []
        with atomic(self.conn):
            on_commit(self.conn, done.append, 1)
        self.assertEqual(done, [1])
        self.assertIsNot(sqlite_atomic._states[id(self.conn)], stale)

    def test_manual_mode_callables_run_at_commit(self):
        set_autocommit(self.conn, False)
        with atomic(self.conn):
            on_commit(self.conn, self.log, "manual")
        self.assertEqual(self.rows("log"), [])
        commit(self.conn)
        self.assertEqual(self.rows("log"), ["manual"])
        set_autocommit(self.conn, True)
        # conn.commit() commits but runs nothing: set_autocommit() does
        set_autocommit(self.conn, False)
        with atomic(self.conn):
            on_commit(self.conn, self.log, "waited")
        self.conn.commit()
        self.assertEqual(self.rows("log"), ["manual"])
        self.assertEqual([p.args for p in pending(self.conn)], [("waited",)])
        set_autocommit(self.conn, True)
        self.assertEqual(self.rows("log"), ["manual", "waited"])
        # rollback() discards them
        set_autocommit(self.conn, False)
        with atomic(self.conn):
            on_commit(self.conn, self.log, "rolled back")
        rollback(self.conn)
        set_autocommit(self.conn, True)
        self.assertEqual(self.rows("log"), ["manual", "waited"])
        self.assertEqual(self.registry(), {})

    def test_callables_on_two_connections_are_independent(self):
        other = self.connect()
        load(other)
        got = []
        with atomic(self.conn):
            on_commit(self.conn, got.append, "first")
            with atomic(other):
                on_commit(other, got.append, "second")
            self.assertEqual(got, ["second"])
        self.assertEqual(got, ["second", "first"])


if __name__ == "__main__":
    unittest.main()
