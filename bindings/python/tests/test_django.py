# Django's own transaction tests (tests/transactions/tests.py and
# tests/transaction_hooks/tests.py), written as a Django user moving to
# sqlite_atomic would write them: Reporter and Thing are tables, the ORM
# calls are INSERTs and SELECTs, transaction.X(...) is sqlite_atomic.X(conn,
# ...).  What cannot be ported (Django internals such as savepoint_ids,
# reconnecting, mark_for_rollback_on_error) is left out.
# SPDX-License-Identifier: MIT
import os
import shutil
import sqlite3
import sys
import tempfile
import unittest

from sqlite_atomic import (
    atomic, commit, get_autocommit, get_rollback, load, on_commit, rollback,
    savepoint, savepoint_rollback, set_autocommit, set_rollback,
)

BROKEN = ("An error occurred in the current transaction. You can't execute "
          "queries until the end of the 'atomic' block.")
FORBIDDEN = "This is forbidden when an 'atomic' block is active."
DURABLE = "A durable atomic block cannot be nested within another atomic block."


class DatabaseTestCase(unittest.TestCase):
    """A fresh database file per test, with the extension loaded."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.conn = sqlite3.connect(os.path.join(self.tmp, "test.db"),
                                    isolation_level=None)
        self.addCleanup(self.conn.close)
        load(self.conn)
        self.conn.execute(
            "CREATE TABLE reporter(id INTEGER PRIMARY KEY, first_name TEXT, "
            "last_name TEXT NOT NULL DEFAULT '', email TEXT)")
        self.conn.execute("CREATE TABLE thing(num INTEGER)")

    def create(self, first_name="", last_name="", id=None):
        self.conn.execute(
            "INSERT INTO reporter(id, first_name, last_name) VALUES(?, ?, ?)",
            (id, first_name, last_name))

    def reporters(self):
        """Reporter.objects.all(), ordered by (first_name, last_name)."""
        return [" ".join(n for n in row if n) for row in self.conn.execute(
            "SELECT first_name, last_name FROM reporter "
            "ORDER BY first_name, last_name")]

    def count(self):
        return self.conn.execute("SELECT count(*) FROM reporter").fetchone()[0]


class AtomicTests(DatabaseTestCase):
    """tests/transactions/tests.py AtomicTests: the 21 tests but
    test_failure_on_exit_transaction, which plants a bogus savepoint id in
    Django's internals."""

    def test_decorator_syntax_commit(self):
        @atomic(self.conn)
        def make_reporter():
            self.create(first_name="Tintin")
            return "Tintin"

        self.assertEqual(make_reporter(), "Tintin")
        self.assertEqual(self.reporters(), ["Tintin"])

    def test_decorator_syntax_rollback(self):
        @atomic(self.conn)
        def make_reporter():
            self.create(first_name="Haddock")
            raise Exception("Oops, that's his last name")

        with self.assertRaisesRegex(Exception, "Oops"):
            make_reporter()
        self.assertEqual(self.reporters(), [])

    def test_alternate_decorator_syntax_commit(self):
        @atomic(self.conn, savepoint=True, durable=False)
        def make_reporter():
            self.create(first_name="Tintin")
            return "Tintin"

        self.assertEqual(make_reporter(), "Tintin")
        self.assertEqual(self.reporters(), ["Tintin"])

    def test_alternate_decorator_syntax_rollback(self):
        @atomic(self.conn, savepoint=True, durable=False)
        def make_reporter():
            self.create(first_name="Haddock")
            raise Exception("Oops, that's his last name")

        with self.assertRaisesRegex(Exception, "Oops"):
            make_reporter()
        self.assertEqual(self.reporters(), [])

    def test_commit(self):
        with atomic(self.conn):
            self.create(first_name="Tintin")
        self.assertEqual(self.reporters(), ["Tintin"])

    def test_rollback(self):
        with self.assertRaisesRegex(Exception, "Oops"):
            with atomic(self.conn):
                self.create(first_name="Haddock")
                raise Exception("Oops, that's his last name")
        self.assertEqual(self.reporters(), [])

    def test_nested_commit_commit(self):
        with atomic(self.conn):
            self.create(first_name="Tintin")
            with atomic(self.conn):
                self.create(first_name="Archibald", last_name="Haddock")
        self.assertEqual(self.reporters(), ["Archibald Haddock", "Tintin"])

    def test_nested_commit_rollback(self):
        with atomic(self.conn):
            self.create(first_name="Tintin")
            with self.assertRaisesRegex(Exception, "Oops"):
                with atomic(self.conn):
                    self.create(first_name="Haddock")
                    raise Exception("Oops, that's his last name")
        self.assertEqual(self.reporters(), ["Tintin"])

    def test_nested_rollback_commit(self):
        with self.assertRaisesRegex(Exception, "Oops"):
            with atomic(self.conn):
                self.create(last_name="Tintin")
                with atomic(self.conn):
                    self.create(last_name="Haddock")
                raise Exception("Oops, that's his first name")
        self.assertEqual(self.reporters(), [])

    def test_nested_rollback_rollback(self):
        with self.assertRaisesRegex(Exception, "Oops"):
            with atomic(self.conn):
                self.create(last_name="Tintin")
                with self.assertRaisesRegex(Exception, "Oops"):
                    with atomic(self.conn):
                        self.create(first_name="Haddock")
                    raise Exception("Oops, that's his last name")
                raise Exception("Oops, that's his first name")
        self.assertEqual(self.reporters(), [])

    def test_merged_commit_commit(self):
        with atomic(self.conn):
            self.create(first_name="Tintin")
            with atomic(self.conn, savepoint=False):
                self.create(first_name="Archibald", last_name="Haddock")
        self.assertEqual(self.reporters(), ["Archibald Haddock", "Tintin"])

    def test_merged_commit_rollback(self):
        with atomic(self.conn):
            self.create(first_name="Tintin")
            with self.assertRaisesRegex(Exception, "Oops"):
                with atomic(self.conn, savepoint=False):
                    self.create(first_name="Haddock")
                    raise Exception("Oops, that's his last name")
        # Writes in the outer block are rolled back too.
        self.assertEqual(self.reporters(), [])

    def test_merged_rollback_commit(self):
        with self.assertRaisesRegex(Exception, "Oops"):
            with atomic(self.conn):
                self.create(last_name="Tintin")
                with atomic(self.conn, savepoint=False):
                    self.create(last_name="Haddock")
                raise Exception("Oops, that's his first name")
        self.assertEqual(self.reporters(), [])

    def test_merged_rollback_rollback(self):
        with self.assertRaisesRegex(Exception, "Oops"):
            with atomic(self.conn):
                self.create(last_name="Tintin")
                with self.assertRaisesRegex(Exception, "Oops"):
                    with atomic(self.conn, savepoint=False):
                        self.create(first_name="Haddock")
                    raise Exception("Oops, that's his last name")
                raise Exception("Oops, that's his first name")
        self.assertEqual(self.reporters(), [])

    def test_reuse_commit_commit(self):
        atomic_ = atomic(self.conn)
        with atomic_:
            self.create(first_name="Tintin")
            with atomic_:
                self.create(first_name="Archibald", last_name="Haddock")
        self.assertEqual(self.reporters(), ["Archibald Haddock", "Tintin"])

    def test_reuse_commit_rollback(self):
        atomic_ = atomic(self.conn)
        with atomic_:
            self.create(first_name="Tintin")
            with self.assertRaisesRegex(Exception, "Oops"):
                with atomic_:
                    self.create(first_name="Haddock")
                    raise Exception("Oops, that's his last name")
        self.assertEqual(self.reporters(), ["Tintin"])

    def test_reuse_rollback_commit(self):
        atomic_ = atomic(self.conn)
        with self.assertRaisesRegex(Exception, "Oops"):
            with atomic_:
                self.create(last_name="Tintin")
                with atomic_:
                    self.create(last_name="Haddock")
                raise Exception("Oops, that's his first name")
        self.assertEqual(self.reporters(), [])

    def test_reuse_rollback_rollback(self):
        atomic_ = atomic(self.conn)
        with self.assertRaisesRegex(Exception, "Oops"):
            with atomic_:
                self.create(last_name="Tintin")
                with self.assertRaisesRegex(Exception, "Oops"):
                    with atomic_:
                        self.create(first_name="Haddock")
                    raise Exception("Oops, that's his last name")
                raise Exception("Oops, that's his first name")
        self.assertEqual(self.reporters(), [])

    def test_force_rollback(self):
        with atomic(self.conn):
            self.create(first_name="Tintin")
            # atomic block shouldn't rollback, but force it.
            self.assertFalse(get_rollback(self.conn))
            set_rollback(self.conn, True)
        self.assertEqual(self.reporters(), [])

    def test_prevent_rollback(self):
        with atomic(self.conn):
            self.create(first_name="Tintin")
            sid = savepoint(self.conn)
            # trigger a database error inside an inner atomic without savepoint
            with self.assertRaises(sqlite3.DatabaseError):
                with atomic(self.conn, savepoint=False):
                    self.conn.execute("SELECT no_such_col FROM reporter")
            # prevent atomic from rolling back since we're recovering manually
            self.assertTrue(get_rollback(self.conn))
            set_rollback(self.conn, False)
            savepoint_rollback(self.conn, sid)
        self.assertEqual(self.reporters(), ["Tintin"])


class AtomicInsideTransactionTests(AtomicTests):
    """All basic tests for atomic should also pass within an existing
    transaction."""

    def setUp(self):
        super().setUp()
        self.atomic = atomic(self.conn)
        self.atomic.__enter__()
        self.addCleanup(self.atomic.__exit__, None, None, None)


class AtomicWithoutAutocommitTests(AtomicTests):
    """All basic tests for atomic should also pass when autocommit is
    turned off."""

    def setUp(self):
        super().setUp()
        set_autocommit(self.conn, False)
        # Cleanups run in reverse: rollback, then autocommit back on.
        self.addCleanup(set_autocommit, self.conn, True)
        self.addCleanup(rollback, self.conn)


class AtomicMergeTests(DatabaseTestCase):
    """Test merging transactions with savepoint=False."""

    def test_merged_outer_rollback(self):
        with atomic(self.conn):
            self.create(first_name="Tintin")
            with atomic(self.conn, savepoint=False):
                self.create(first_name="Archibald", last_name="Haddock")
                with self.assertRaisesRegex(Exception, "Oops"):
                    with atomic(self.conn, savepoint=False):
                        self.create(first_name="Calculus")
                        raise Exception("Oops, that's his last name")
                # The third insert couldn't be roll back. Temporarily mark
                # the connection as not needing rollback to check it.
                self.assertTrue(get_rollback(self.conn))
                set_rollback(self.conn, False)
                self.assertEqual(self.count(), 3)
                set_rollback(self.conn, True)
            # The second insert couldn't be roll back. Temporarily mark the
            # connection as not needing rollback to check it.
            self.assertTrue(get_rollback(self.conn))
            set_rollback(self.conn, False)
            self.assertEqual(self.count(), 3)
            set_rollback(self.conn, True)
        # The first block has a savepoint and must roll back.
        self.assertEqual(self.reporters(), [])

    def test_merged_inner_savepoint_rollback(self):
        with atomic(self.conn):
            self.create(first_name="Tintin")
            with atomic(self.conn):
                self.create(first_name="Archibald", last_name="Haddock")
                with self.assertRaisesRegex(Exception, "Oops"):
                    with atomic(self.conn, savepoint=False):
                        self.create(first_name="Calculus")
                        raise Exception("Oops, that's his last name")
                # The third insert couldn't be roll back. Temporarily mark
                # the connection as not needing rollback to check it.
                self.assertTrue(get_rollback(self.conn))
                set_rollback(self.conn, False)
                self.assertEqual(self.count(), 3)
                set_rollback(self.conn, True)
            # The second block has a savepoint and must roll back.
            self.assertEqual(self.count(), 1)
        self.assertEqual(self.reporters(), ["Tintin"])


class AtomicErrorsTests(DatabaseTestCase):
    """AtomicErrorsTests.  Where Django refuses every query in a broken
    transaction, the extension refuses on_commit() and savepoint() (plain
    SQL would need an authorizer)."""

    def test_atomic_prevents_setting_autocommit(self):
        autocommit = get_autocommit(self.conn)
        with atomic(self.conn):
            with self.assertRaisesRegex(sqlite3.OperationalError, FORBIDDEN):
                set_autocommit(self.conn, not autocommit)
        # Make sure autocommit wasn't changed.
        self.assertEqual(get_autocommit(self.conn), autocommit)

    def test_atomic_prevents_calling_transaction_methods(self):
        with atomic(self.conn):
            with self.assertRaisesRegex(sqlite3.OperationalError, FORBIDDEN):
                commit(self.conn)
            with self.assertRaisesRegex(sqlite3.OperationalError, FORBIDDEN):
                rollback(self.conn)

    def test_atomic_prevents_queries_in_broken_transaction(self):
        self.create(first_name="Archibald", last_name="Haddock", id=1)
        with atomic(self.conn):
            with self.assertRaises(sqlite3.IntegrityError):
                with atomic(self.conn, savepoint=False):
                    self.create(first_name="Cuthbert", last_name="Calculus",
                                id=1)
            # The transaction is marked as needing rollback.
            with self.assertRaisesRegex(sqlite3.OperationalError, BROKEN):
                on_commit(self.conn, print)
            with self.assertRaisesRegex(sqlite3.OperationalError, BROKEN):
                savepoint(self.conn)
        self.assertEqual(self.reporters(), ["Archibald Haddock"])

    def test_atomic_allows_queries_after_fixing_transaction(self):
        self.create(first_name="Archibald", last_name="Haddock", id=1)
        done = []
        with atomic(self.conn):
            with self.assertRaises(sqlite3.IntegrityError):
                with atomic(self.conn, savepoint=False):
                    self.create(first_name="Cuthbert", last_name="Calculus",
                                id=1)
            # Mark the transaction as no longer needing rollback.
            set_rollback(self.conn, False)
            self.conn.execute(
                "UPDATE reporter SET last_name = 'Calculus' WHERE id = 1")
            on_commit(self.conn, done.append, "fixed")
        self.assertEqual(self.reporters(), ["Archibald Calculus"])
        self.assertEqual(done, ["fixed"])


class AtomicMiscTests(DatabaseTestCase):

    def test_wrap_callable_instance(self):
        """#20028 -- Atomic must support wrapping callable instances."""

        class Callable:
            def __call__(self):
                pass

        # Must not raise an exception
        atomic(self.conn)(Callable())


class NonAutocommitTests(DatabaseTestCase):

    def setUp(self):
        super().setUp()
        set_autocommit(self.conn, False)
        self.addCleanup(set_autocommit, self.conn, True)
        self.addCleanup(rollback, self.conn)

    def test_orm_query_after_error_and_rollback(self):
        """ORM queries are allowed after an error and a rollback in
        non-autocommit mode (#27504)."""
        self.create(first_name="Archibald", last_name="Haddock", id=1)
        with self.assertRaises(sqlite3.IntegrityError):
            self.create(first_name="Cuthbert", last_name="Calculus", id=1)
        rollback(self.conn)
        self.assertEqual(self.reporters(), [])

    def test_orm_query_without_autocommit(self):
        """#24921 -- ORM queries must be possible after set_autocommit(False)."""
        self.create(first_name="Tintin")
        self.assertEqual(self.reporters(), ["Tintin"])


class DurableTests(DatabaseTestCase):

    def test_commit(self):
        with atomic(self.conn, durable=True):
            self.create(first_name="Tintin")
        self.assertEqual(self.reporters(), ["Tintin"])

    def test_nested_outer_durable(self):
        with atomic(self.conn, durable=True):
            self.create(first_name="Tintin")
            with atomic(self.conn):
                self.create(first_name="Archibald", last_name="Haddock")
        self.assertEqual(self.reporters(), ["Archibald Haddock", "Tintin"])

    def test_nested_both_durable(self):
        with atomic(self.conn, durable=True):
            # Error is not raised.
            self.create(first_name="Tintin")
            with self.assertRaisesRegex(sqlite3.OperationalError, DURABLE):
                with atomic(self.conn, durable=True):
                    pass
        self.assertEqual(self.reporters(), ["Tintin"])

    def test_nested_inner_durable(self):
        with atomic(self.conn):
            with self.assertRaisesRegex(sqlite3.OperationalError, DURABLE):
                with atomic(self.conn, durable=True):
                    pass

    def test_sequence_of_durables(self):
        with atomic(self.conn, durable=True):
            self.create(first_name="Tintin 1")
        self.assertEqual(self.reporters(), ["Tintin 1"])
        with atomic(self.conn, durable=True):
            self.create(first_name="Tintin 2")
        self.assertEqual(self.reporters(), ["Tintin 1", "Tintin 2"])


class ForcedError(Exception):
    pass


class TestConnectionOnCommit(DatabaseTestCase):
    """tests/transaction_hooks/tests.py: the 23 tests but
    test_hooks_cleared_on_reconnect, which needs a server database."""

    def setUp(self):
        super().setUp()
        self.notified = []

    def notify(self, id_):
        if id_ == "error":
            raise ForcedError()
        self.notified.append(id_)

    def do(self, num):
        """Create a Thing instance and notify about it."""
        self.conn.execute("INSERT INTO thing(num) VALUES(?)", (num,))
        on_commit(self.conn, lambda: self.notify(num))

    def assertDone(self, nums):
        self.assertNotified(nums)
        self.assertEqual(
            sorted(n for (n,) in self.conn.execute("SELECT num FROM thing")),
            sorted(nums))

    def assertNotified(self, nums):
        self.assertEqual(self.notified, nums)

    def test_executes_immediately_if_no_transaction(self):
        self.do(1)
        self.assertDone([1])

    def test_robust_if_no_transaction(self):
        def robust_callback():
            raise ForcedError("robust callback")

        with self.assertLogs("sqlite_atomic", "ERROR") as cm:
            on_commit(self.conn, robust_callback, robust=True)
            self.do(1)

        self.assertDone([1])
        log_record = cm.records[0]
        self.assertEqual(
            log_record.getMessage(),
            "Error calling TestConnectionOnCommit.test_robust_if_no_transaction."
            "<locals>.robust_callback in on_commit() (robust callback).",
        )
        self.assertIsNotNone(log_record.exc_info)
        raised_exception = log_record.exc_info[1]
        self.assertIsInstance(raised_exception, ForcedError)
        self.assertEqual(str(raised_exception), "robust callback")

    def test_robust_if_no_transaction_with_callback_as_partial(self):
        import functools

        def robust_callback():
            raise ForcedError("robust callback")

        robust_callback = functools.partial(robust_callback)
        with self.assertLogs("sqlite_atomic", "ERROR") as cm:
            on_commit(self.conn, robust_callback, robust=True)
            self.do(1)

        self.assertDone([1])
        log_record = cm.records[0]
        self.assertEqual(
            log_record.getMessage(),
            f"Error calling {robust_callback} in on_commit() (robust callback).",
        )
        self.assertIsNotNone(log_record.exc_info)
        raised_exception = log_record.exc_info[1]
        self.assertIsInstance(raised_exception, ForcedError)
        self.assertEqual(str(raised_exception), "robust callback")

    def test_robust_transaction(self):
        def robust_callback():
            raise ForcedError("robust callback")

        with self.assertLogs("sqlite_atomic", "ERROR") as cm:
            with atomic(self.conn):
                on_commit(self.conn, robust_callback, robust=True)
                self.do(1)

        self.assertDone([1])
        log_record = cm.records[0]
        self.assertEqual(
            log_record.getMessage(),
            "Error calling TestConnectionOnCommit.test_robust_transaction.<locals>."
            "robust_callback in on_commit() during transaction (robust callback).",
        )
        self.assertIsNotNone(log_record.exc_info)
        raised_exception = log_record.exc_info[1]
        self.assertIsInstance(raised_exception, ForcedError)
        self.assertEqual(str(raised_exception), "robust callback")

    def test_robust_transaction_with_callback_as_partial(self):
        import functools

        def robust_callback():
            raise ForcedError("robust callback")

        robust_callback = functools.partial(robust_callback)
        with self.assertLogs("sqlite_atomic", "ERROR") as cm:
            with atomic(self.conn):
                on_commit(self.conn, robust_callback, robust=True)
                self.do(1)

        self.assertDone([1])
        log_record = cm.records[0]
        self.assertEqual(
            log_record.getMessage(),
            f"Error calling {robust_callback} in on_commit() during transaction "
            "(robust callback).",
        )
        self.assertIsNotNone(log_record.exc_info)
        raised_exception = log_record.exc_info[1]
        self.assertIsInstance(raised_exception, ForcedError)
        self.assertEqual(str(raised_exception), "robust callback")

    def test_delays_execution_until_after_transaction_commit(self):
        with atomic(self.conn):
            self.do(1)
            self.assertNotified([])
        self.assertDone([1])

    def test_does_not_execute_if_transaction_rolled_back(self):
        try:
            with atomic(self.conn):
                self.do(1)
                raise ForcedError()
        except ForcedError:
            pass

        self.assertDone([])

    def test_executes_only_after_final_transaction_committed(self):
        with atomic(self.conn):
            with atomic(self.conn):
                self.do(1)
                self.assertNotified([])
            self.assertNotified([])
        self.assertDone([1])

    def test_discards_hooks_from_rolled_back_savepoint(self):
        with atomic(self.conn):
            # one successful savepoint
            with atomic(self.conn):
                self.do(1)
            # one failed savepoint
            try:
                with atomic(self.conn):
                    self.do(2)
                    raise ForcedError()
            except ForcedError:
                pass
            # another successful savepoint
            with atomic(self.conn):
                self.do(3)

        # only hooks registered during successful savepoints execute
        self.assertDone([1, 3])

    def test_no_hooks_run_from_failed_transaction(self):
        """If outer transaction fails, no hooks from within it run."""
        try:
            with atomic(self.conn):
                with atomic(self.conn):
                    self.do(1)
                raise ForcedError()
        except ForcedError:
            pass

        self.assertDone([])

    def test_inner_savepoint_rolled_back_with_outer(self):
        with atomic(self.conn):
            try:
                with atomic(self.conn):
                    with atomic(self.conn):
                        self.do(1)
                    raise ForcedError()
            except ForcedError:
                pass
            self.do(2)

        self.assertDone([2])

    def test_no_savepoints_atomic_merged_with_outer(self):
        with atomic(self.conn):
            with atomic(self.conn):
                self.do(1)
                try:
                    with atomic(self.conn, savepoint=False):
                        raise ForcedError()
                except ForcedError:
                    pass

        self.assertDone([])

    def test_inner_savepoint_does_not_affect_outer(self):
        with atomic(self.conn):
            with atomic(self.conn):
                self.do(1)
                try:
                    with atomic(self.conn):
                        raise ForcedError()
                except ForcedError:
                    pass

        self.assertDone([1])

    def test_runs_hooks_in_order_registered(self):
        with atomic(self.conn):
            self.do(1)
            with atomic(self.conn):
                self.do(2)
            self.do(3)

        self.assertDone([1, 2, 3])

    def test_hooks_cleared_after_successful_commit(self):
        with atomic(self.conn):
            self.do(1)
        with atomic(self.conn):
            self.do(2)

        self.assertDone([1, 2])  # not [1, 1, 2]

    def test_hooks_cleared_after_rollback(self):
        try:
            with atomic(self.conn):
                self.do(1)
                raise ForcedError()
        except ForcedError:
            pass

        with atomic(self.conn):
            self.do(2)

        self.assertDone([2])

    def test_error_in_hook_doesnt_prevent_clearing_hooks(self):
        try:
            with atomic(self.conn):
                on_commit(self.conn, lambda: self.notify("error"))
        except ForcedError:
            pass

        with atomic(self.conn):
            self.do(1)

        self.assertDone([1])

    def test_db_query_in_hook(self):
        with atomic(self.conn):
            self.conn.execute("INSERT INTO thing(num) VALUES(1)")
            on_commit(self.conn, lambda: [
                self.notify(num)
                for (num,) in self.conn.execute("SELECT num FROM thing")])

        self.assertDone([1])

    def test_transaction_in_hook(self):
        def on_commit_():
            with atomic(self.conn):
                self.conn.execute("INSERT INTO thing(num) VALUES(1)")
                self.notify(1)

        with atomic(self.conn):
            on_commit(self.conn, on_commit_)

        self.assertDone([1])

    def test_hook_in_hook(self):
        def on_commit_(i, add_hook):
            with atomic(self.conn):
                if add_hook:
                    on_commit(self.conn, lambda: on_commit_(i + 10, False))
                self.conn.execute("INSERT INTO thing(num) VALUES(?)", (i,))
                self.notify(i)

        with atomic(self.conn):
            on_commit(self.conn, lambda: on_commit_(1, True))
            on_commit(self.conn, lambda: on_commit_(2, True))

        self.assertDone([1, 11, 2, 12])

    def test_raises_exception_non_autocommit_mode(self):
        def should_never_be_called():
            raise AssertionError("this function should never be called")

        try:
            set_autocommit(self.conn, False)
            msg = "on_commit() cannot be used in manual transaction management"
            with self.assertRaisesRegex(sqlite3.OperationalError,
                                        msg.replace("(", r"\(").replace(")", r"\)")):
                on_commit(self.conn, should_never_be_called)
        finally:
            # Unlike Django, the extension does not commit by itself here
            rollback(self.conn)
            set_autocommit(self.conn, True)

    def test_raises_exception_non_callable(self):
        msg = "on_commit()'s callback must be a callable."
        with self.assertRaises(TypeError) as cm:
            on_commit(self.conn, None)
        self.assertEqual(str(cm.exception), msg)


if __name__ == "__main__":
    unittest.main()
