# SPDX-License-Identifier: MIT
"""sqlite_atomic -- Django's django.db.transaction for Python's sqlite3.

The package holds the compiled atomic SQLite extension and the Python side
of Django's API on top of it:

    import sqlite3, sqlite_atomic
    conn = sqlite3.connect("app.db", isolation_level=None)
    sqlite_atomic.load(conn)
    with sqlite_atomic.atomic(conn):
        conn.execute("INSERT INTO orders VALUES(1)")
        sqlite_atomic.on_commit(conn, send_mail, 1)   # after the COMMIT

FUNCTIONS (conn is a sqlite3.Connection the extension was loaded into)

    loadable_path()                      the extension's file, for .load
    load(conn)                           load it; refuses unsafe modes
    atomic(conn, savepoint=True, durable=False)
                                         a block: `with` or decorator
    on_commit(conn, func, *args, robust=False)
                                         func(*args) after the commit
    on_commit_sql(conn, sql, *args, robust=False)
                                         the SQL statement, the same way
    set_rollback(conn, flag), get_rollback(conn)
    savepoint(conn) (= savepoint_create), savepoint_commit(conn, sid),
    savepoint_rollback(conn, sid), clean_savepoints(conn)
    get_autocommit(conn), set_autocommit(conn, flag),
    commit(conn), rollback(conn)         Django's low-level calls
    depth(conn)                          open blocks
    pending(conn)                        the queued callbacks, in run order

Errors of the extension are sqlite3 errors whose text contains Django's.
A connection whose sqlite3 module begins transactions by itself
(isolation_level other than None, or Python 3.12's autocommit=False) is
refused by load(), atomic() and on_commit() with ConnectionModeError.
Failures of robust callables are logged on the logger "sqlite_atomic".

HOW IT WORKS

A Python callable cannot be stored in SQLite, so on_commit() keeps it in a
per-connection registry under an integer id, and queues the SQL callback
"SELECT sqlite_atomic_call_<token>(?1)" with that id.  The function
sqlite_atomic_call_<token> is registered on the connection by load() (the
token is random, so a database file's schema cannot name it); when the
extension runs the callback after the commit, the function takes the
callable out of the registry and calls it.  So the callables run in the
extension's queue, in order with SQL callbacks, and are discarded exactly
when the extension discards their SQL callback.  A discarded callback
leaves its registry entry behind; the entries whose id is no longer listed
in atomic_pending are dropped when an outermost block ends with entries
left, and whenever the registry has grown to twice its size after the last
such pruning (at least 256 entries): it never holds more than twice the
live callables plus 256.

The registry lives on an object that only the registered function refers
to, found through a dictionary of weak references keyed by id(conn)
(sqlite3.Connection takes no attributes and no weak references).  Closing
the connection destroys the function, and with it the registry and every
callable still queued.
"""

import contextlib
import functools
import itertools
import json
import logging
import os
import secrets
import sqlite3
import weakref
from collections import namedtuple

__all__ = [
    "ConnectionModeError", "Atomic", "Block", "Pending",
    "loadable_path", "load", "atomic", "on_commit", "on_commit_sql",
    "set_rollback", "get_rollback", "savepoint", "savepoint_create",
    "savepoint_commit", "savepoint_rollback", "clean_savepoints",
    "get_autocommit", "set_autocommit", "commit", "rollback", "depth",
    "pending", "logger", "__version__",
]

_HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(_HERE, "VERSION"), encoding="ascii") as _f:
    __version__ = _f.read().strip()

logger = logging.getLogger("sqlite_atomic")

_FAILED_AFTER_COMMIT = "on_commit callback failed after commit:"
_COMMITTED_OUTSIDE = "the transaction was committed outside of the 'atomic' block"
_MIN_LIMIT = 256
_COMMIT_HINT = (
    "sqlite_atomic: Python's sqlite3 commits by itself in conn.commit(), at "
    "the end of `with conn:`, when conn.isolation_level is set, and in "
    "executescript() (Python 3.11, and 3.12+ unless autocommit=True); inside "
    "a block run each statement with execute()")


class ConnectionModeError(sqlite3.ProgrammingError):
    """The connection's sqlite3 module begins transactions by itself, so
    blocks could not commit and their callbacks would be lost."""


Pending = namedtuple("Pending", "seq sql args depth robust durable func")
Pending.__doc__ = """A queued callback, as atomic_pending lists it.

For a Python callable, func is the callable and args its arguments (a
tuple); for a SQL callback, func is None and args the decoded JSON array
(a blob appears as the text "x'...'")."""


def loadable_path():
    """The path of the extension's shared library inside the package (for
    conn.load_extension(), the CLI's .load, or any other binding)."""
    return os.path.join(_HERE, "atomic.so")


# ---------------------------------------------------------------------------
# Transaction modes of Python's sqlite3 module

def _mode_problem(conn):
    """Why conn's transaction mode would lose callbacks, or None if it is
    safe: Python 3.12's autocommit=True, or legacy transaction control with
    isolation_level=None."""
    autocommit = getattr(conn, "autocommit", None)     # Python 3.12+
    if autocommit is True:
        return None
    if autocommit is False:
        return ("with autocommit=False, sqlite3 keeps a transaction open "
                "at all times; blocks inside it cannot commit, and their "
                "on_commit() callbacks would wait for a commit the "
                "extension never sees and be lost at close. Open the "
                "connection with autocommit=True, or set "
                "conn.autocommit = True")
    level = conn.isolation_level
    if level is None:
        return None
    return ("with isolation_level=%r%s, sqlite3 begins a transaction by "
            "itself before INSERT, UPDATE and DELETE; a block opened after "
            "such a statement cannot commit, and its on_commit() callbacks "
            "would wait for a commit the extension never sees and be lost "
            "at close. Open the connection with isolation_level=None "
            "(Python 3.12+: autocommit=True), or set "
            "conn.isolation_level = None"
            % (level, " (Python's default)" if level == "" else ""))


def _check_mode(conn, fname):
    problem = _mode_problem(conn)
    if problem is not None:
        raise ConnectionModeError("sqlite_atomic.%s refused: %s."
                                  % (fname, problem))


# ---------------------------------------------------------------------------
# Per-connection state: the registry of queued Python callables

class _State:
    """What load() adds to a connection: the registered function that runs
    queued callables, and their registry.  Only that function refers to it,
    so it lives exactly as long as the function is registered."""

    __slots__ = ("name", "sql", "registry", "ids", "limit", "running",
                 "busy", "queuing", "failure", "__weakref__")

    def __init__(self):
        self.name = "sqlite_atomic_call_" + secrets.token_hex(8)
        self.sql = "SELECT %s(?1)" % self.name
        self.registry = {}        # id -> (func, args, robust)
        self.ids = itertools.count(1)
        self.limit = _MIN_LIMIT   # prune when the registry grows past this
        self.running = 0          # callables running now
        self.busy = 0             # helper statements that may run callbacks
        self.queuing = set()      # ids whose on_commit() call is under way
        self.failure = None       # what a callable raised, for the helper

    def call(self, ident):
        """The SQL function: run the callable queued under ident.  A plain
        callable's exception is kept for the helper that started the run
        and reported to SQLite as an error; a robust callable's Exception
        is logged, as Django does, and the run goes on."""
        if ident is None:
            return None           # load()'s probe
        entry = self.registry.pop(ident, None)
        if entry is None:
            self.failure = LookupError(
                "sqlite_atomic: no queued callable has id %r" % (ident,))
            raise self.failure
        func, args, robust = entry
        immediate = ident in self.queuing
        self.running += 1
        try:
            func(*args)
        except Exception as exc:
            if not robust:
                self._keep(exc)
                raise
            name = getattr(func, "__qualname__", func)
            if immediate:
                logger.exception("Error calling %s in on_commit() (%s).",
                                 name, exc)
            else:
                logger.exception("Error calling %s in on_commit() during "
                                 "transaction (%s).", name, exc)
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit: never swallowed
            self._keep(exc)
            raise
        finally:
            self.running -= 1
        return None

    def _keep(self, exc):
        """Keep exc for the helper, unless a KeyboardInterrupt or the like
        (a robust callable's, which did not stop the run) is kept already:
        that one wins."""
        if self.failure is None or isinstance(self.failure, Exception):
            self.failure = exc

    def prune(self, conn):
        """Drop the registry entries whose callback the extension discarded:
        those no longer listed in atomic_pending.  Not while a run of
        callbacks is under way (a run's callbacks leave atomic_pending when
        it starts)."""
        if self.running or self.busy:
            return
        live = set(self.queuing)
        try:
            for (args,) in conn.execute(
                    "SELECT args FROM atomic_pending WHERE sql = ?",
                    (self.sql,)):
                live.add(json.loads(args)[0])
        except sqlite3.Error:
            return
        for ident in [i for i in self.registry if i not in live]:
            del self.registry[ident]
        self.limit = max(_MIN_LIMIT, 2 * len(self.registry))


_states = weakref.WeakValueDictionary()     # id(conn) -> _State


def _bind(conn):
    """Register a fresh _State's function on conn and return the state."""
    state = _State()
    conn.create_function(state.name, 1, state.call)
    _states[id(conn)] = state
    return state


def _state(conn):
    """conn's state, binding one if it has none (the extension may have been
    loaded without load())."""
    state = _states.get(id(conn))
    if state is None:
        state = _bind(conn)
    return state


def _is_bound(conn, state):
    """Whether state's function is registered on conn (an id can be reused
    by a new connection while an old state lives on)."""
    try:
        conn.execute("SELECT %s(NULL)" % state.name).fetchone()
    except sqlite3.OperationalError:
        return False
    return True


def _attach(exc, err):
    """Attach the extension's error err to the exception exc, which goes on
    unchanged: a note for the traceback, and the attribute
    sqlite_atomic_error for programs (the first error attached: that of the
    innermost block the exception left)."""
    try:
        if getattr(exc, "sqlite_atomic_error", None) is None:
            exc.sqlite_atomic_error = err
    except (AttributeError, TypeError):
        pass
    add_note = getattr(exc, "add_note", None)          # Python 3.11+
    if add_note is not None:
        add_note("sqlite_atomic: %s" % (err,))


def _run(conn, sql, params=()):
    """Execute a statement that may run callbacks (atomic_exit(),
    atomic_commit(), set_autocommit(1), on_commit()) and return its value.
    If a callable failed, its own exception is raised, with the extension's
    error attached."""
    state = _states.get(id(conn))
    if state is None:
        return conn.execute(sql, params).fetchone()[0]
    outer_failure, state.failure = state.failure, None
    state.busy += 1
    err = None
    try:
        value = conn.execute(sql, params).fetchone()[0]
    except sqlite3.Error as e:
        err = e
    finally:
        state.busy -= 1
        failure, state.failure = state.failure, outer_failure
    if failure is not None:
        # A plain callable failed (err says so), or a robust one raised a
        # BaseException (SQLite only logged it): the callable's exception
        # wins, as in Django.
        if err is not None:
            _attach(failure, err)
        raise failure
    if err is not None:
        raise err
    return value


def _settle(conn):
    """Prune the registry once the connection is back in autocommit mode
    with entries left (callables discarded, or waiting for a run point)."""
    state = _states.get(id(conn))
    if state is not None and state.registry:
        try:
            in_transaction = conn.in_transaction
        except sqlite3.Error:
            return
        if not in_transaction:
            state.prune(conn)


# ---------------------------------------------------------------------------
# Loading

def load(conn):
    """Load the extension into conn and register what on_commit() of a
    Python callable needs.  Extension loading is enabled only for the load
    and is left disabled.  Loading twice is harmless and keeps every block
    and queued callback.

    Refuses, with ConnectionModeError and before loading anything, a
    connection whose sqlite3 module begins transactions by itself."""
    _check_mode(conn, "load()")
    enable = getattr(conn, "enable_load_extension", None)
    if enable is None:
        raise sqlite3.NotSupportedError(
            "sqlite_atomic.load(): this Python's sqlite3 module cannot load "
            "extensions (it was built without them; pyenv's builds are, "
            "unless configured with --enable-loadable-sqlite-extensions). "
            "Use a Python whose sqlite3 can, such as the system's "
            "/usr/bin/python3 on Debian and Ubuntu.")
    enable(True)
    try:
        conn.load_extension(loadable_path())
    finally:
        enable(False)
    state = _states.get(id(conn))
    if state is None or not _is_bound(conn, state):
        _bind(conn)


# ---------------------------------------------------------------------------
# Blocks

class Block:
    """One use of an atomic block.  kept is None while it is open, then True
    if its work was kept (an inner block: handed to the block around it) or
    False if it was rolled back, by an exception or by the rollback
    flag."""

    __slots__ = ("kept",)

    def __init__(self):
        self.kept = None

    def __repr__(self):
        return "<sqlite_atomic.Block kept=%r>" % (self.kept,)


class Atomic(contextlib.ContextDecorator):
    """Django's Atomic: a context manager and a decorator.  One instance may
    be entered again while it is open, and reused."""

    def __init__(self, conn, savepoint=True, durable=False):
        self.conn = conn
        self.savepoint = bool(savepoint)
        self.durable = bool(durable)
        self._blocks = []

    def __enter__(self):
        conn = self.conn
        _check_mode(conn, "atomic()")
        conn.execute("SELECT atomic_enter(?, ?)",
                     (int(self.savepoint), int(self.durable))).fetchone()
        block = Block()
        self._blocks.append(block)
        return block

    def __exit__(self, exc_type, exc, tb):
        block = self._blocks.pop()
        conn = self.conn
        try:
            kept = _run(conn, "SELECT atomic_exit(?)",
                        (0 if exc_type is not None else 1,))
        except BaseException as err:
            _settle(conn)
            if exc_type is not None:
                # The body's exception wins, unchanged, with err attached
                block.kept = False
                _attach(exc, err)
                return False
            if isinstance(err, sqlite3.Error):
                text = str(err)
                block.kept = _FAILED_AFTER_COMMIT in text
                if _COMMITTED_OUTSIDE in text:
                    add_note = getattr(err, "add_note", None)
                    if add_note is not None:
                        add_note(_COMMIT_HINT)
            else:
                block.kept = True     # a callable failed after the commit
            raise
        block.kept = bool(kept)
        _settle(conn)
        return False


def atomic(conn, savepoint=True, durable=False):
    """Django's transaction.atomic() on conn: `with atomic(conn):` or
    `@atomic(conn)`.  The outermost block is a transaction, inner blocks
    are savepoints (none with savepoint=False), a durable block must be
    outermost.  An exception rolls the block back and propagates unchanged;
    `with atomic(conn) as block:` gives a Block whose kept says, after the
    block, whether its work was kept."""
    if callable(conn) and not isinstance(conn, sqlite3.Connection):
        raise TypeError("atomic() takes the connection first: "
                        "@atomic(conn), not @atomic")
    return Atomic(conn, savepoint, durable)


# ---------------------------------------------------------------------------
# Callbacks

def on_commit(conn, func, *args, robust=False):
    """Call func(*args) after the outermost block commits, in order with
    every other callback, Python or SQL; discarded if its block rolls back.
    With no block and no transaction it is called at once.  A plain
    callable's exception propagates from the block's exit (the transaction
    stays committed); a robust one's is logged on the logger
    "sqlite_atomic" and the other callbacks run."""
    if not callable(func):
        raise TypeError("on_commit()'s callback must be a callable.")
    _check_mode(conn, "on_commit()")
    state = _state(conn)
    sql = "SELECT on_commit_robust(?1, ?2)" if robust else \
          "SELECT on_commit(?1, ?2)"
    for attempt in (1, 2):
        ident = next(state.ids)
        state.registry[ident] = (func, args, bool(robust))
        state.queuing.add(ident)
        try:
            _run(conn, sql, (state.sql, ident))
        except sqlite3.OperationalError as err:
            state.registry.pop(ident, None)
            if attempt == 1 and ("no such function: " + state.name) in str(err):
                # A state left by a closed connection with the same id
                state = _bind(conn)
                continue
            raise
        except BaseException:
            state.registry.pop(ident, None)
            raise
        finally:
            state.queuing.discard(ident)
        break
    if len(state.registry) > state.limit:
        state.prune(conn)


def on_commit_sql(conn, sql, *args, robust=False):
    """Queue the SQL statement sql with its arguments (on_commit() or
    on_commit_robust() of the extension).  Returns True if it was queued,
    False if it ran at once."""
    fn = "on_commit_robust" if robust else "on_commit"
    params = (sql,) + args
    marks = ", ".join("?%d" % (i + 1) for i in range(len(params)))
    return bool(_run(conn, "SELECT %s(%s)" % (fn, marks), params))


def pending(conn):
    """The queued callbacks, in the order they would run, as Pending
    tuples (Django's captureOnCommitCallbacks, without running them)."""
    state = _states.get(id(conn))
    rows = conn.execute("SELECT seq, sql, args, depth, robust, durable "
                        "FROM atomic_pending").fetchall()
    out = []
    for seq, sql, args, depth_, robust, durable in rows:
        args = json.loads(args)
        func = None
        if state is not None and sql == state.sql:
            entry = state.registry.get(args[0])
            if entry is not None:
                func, args = entry[0], entry[1]
        out.append(Pending(seq, sql, args, depth_, bool(robust),
                           bool(durable), func))
    return out


# ---------------------------------------------------------------------------
# The rollback flag, savepoints, low level

def _one(conn, sql, params=()):
    return conn.execute(sql, params).fetchone()[0]


def set_rollback(conn, rollback):
    """Django's set_rollback(): make the innermost block with a savepoint
    (or the outermost) roll back when it exits."""
    _one(conn, "SELECT set_rollback(?)", (int(bool(rollback)),))


def get_rollback(conn):
    """Django's get_rollback()."""
    return bool(_one(conn, "SELECT get_rollback()"))


def savepoint(conn):
    """Create a savepoint and return its id; None with no transaction."""
    return _one(conn, "SELECT savepoint()")


savepoint_create = savepoint


def savepoint_commit(conn, sid):
    """Release the savepoint sid."""
    _one(conn, "SELECT savepoint_commit(?)", (sid,))


def savepoint_rollback(conn, sid):
    """Roll back to the savepoint sid (it stays open), discarding the
    callbacks queued after it."""
    _one(conn, "SELECT savepoint_rollback(?)", (sid,))


def clean_savepoints(conn):
    """Reset the savepoint id counter."""
    _one(conn, "SELECT clean_savepoints()")


def get_autocommit(conn):
    """True if no transaction is open."""
    return bool(_one(conn, "SELECT get_autocommit()"))


def set_autocommit(conn, autocommit):
    """set_autocommit(conn, False) begins a transaction (manual mode);
    set_autocommit(conn, True) runs the callbacks whose transaction was
    committed some other way."""
    _run(conn, "SELECT set_autocommit(?)", (int(bool(autocommit)),))
    _settle(conn)


def commit(conn):
    """Django's commit(): COMMIT, then run the callbacks queued in blocks
    inside the transaction.  (conn.commit() commits but runs nothing.)"""
    _run(conn, "SELECT atomic_commit()")
    _settle(conn)


def rollback(conn):
    """Django's rollback(): ROLLBACK, discarding the transaction's
    callbacks, and clear the rollback flag."""
    _one(conn, "SELECT atomic_rollback()")
    _settle(conn)


def depth(conn):
    """The number of open blocks (orphans included)."""
    return _one(conn, "SELECT atomic_depth()")
