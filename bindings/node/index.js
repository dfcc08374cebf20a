// SPDX-License-Identifier: MIT
//
// sqlite-atomic -- Django's transaction.atomic() and on_commit() for Node,
// through the atomic SQLite extension (atomic.so, included).
//
//   const Database = require('libsql');
//   const { load, atomic, onCommit } = require('sqlite-atomic');
//   const db = new Database('app.db');
//   load(db);
//   atomic(db, () => {
//     db.prepare('INSERT INTO orders VALUES(?)').run(1);
//     onCommit(db, () => sendMail(1));        // after the COMMIT
//   });
//
// FUNCTIONS (db: a libsql, better-sqlite3 or node:sqlite database)
//
//   getLoadablePath()                   the extension's file
//   load(db)                            load it, ready for onCommit()
//   atomic(db, fn, {savepoint, durable}) run fn(block) in a block; returns
//                                       what fn returns
//   onCommit(db, fn, {robust})          fn() after the outermost commit
//   runCallbacks(db)                    run JS callbacks already committed
//   setRollback(db, flag), getRollback(db), savepoint(db),
//   savepointCommit(db, sid), savepointRollback(db, sid),
//   cleanSavepoints(db), getAutocommit(db), setAutocommit(db, flag),
//   commit(db), rollback(db), depth(db), pending(db)
//   setRobustErrorHandler(handler)      where robust failures are reported
//
// HOW IT WORKS
//
// libsql cannot call JavaScript from SQL (its Database.function() is not
// implemented), so a JavaScript callback cannot be a SQL callback itself.
// onCommit() keeps fn in a per-database registry under an integer id and
// queues the SQL callback "INSERT INTO temp.atomic_js_callbacks(id)
// VALUES(?1)".  The extension runs it after the commit, or discards it with
// the block that queued it, exactly as any SQL callback; the helpers that
// can commit (atomic(), commit(), setAutocommit(), onCommit()) then take
// the ids the commit wrote to that TEMP table and call their functions, in
// queue order.  So JavaScript callbacks run after the SQL callbacks of the
// same commit, not between them.  Registry entries whose callback was
// discarded are dropped when the connection is back in autocommit mode with
// entries left, and whenever the registry doubles past its size after the
// last such pruning (at least 256 entries).
'use strict';

const path = require('path');

const JS_TABLE = 'atomic_js_callbacks';
const JS_SQL = `INSERT INTO temp.${JS_TABLE}(id) VALUES(?1)`;
const FAILED_AFTER_COMMIT = 'on_commit callback failed after commit:';
const MIN_LIMIT = 256;

const states = new WeakMap(); // db -> State

let robustErrorHandler = defaultRobustErrorHandler;

function defaultRobustErrorHandler(message, error) {
  console.error(message);
  if (error && error.stack) console.error(error.stack);
}

/** The path of the extension's shared library inside the package. */
function getLoadablePath() {
  return path.join(__dirname, 'atomic.so');
}

class State {
  constructor() {
    this.registry = new Map(); // id -> {fn, robust}
    this.nextId = 1;
    this.limit = MIN_LIMIT;
    this.busy = 0; // helper statements under way
    this.queuing = new Set(); // ids whose onCommit() call is under way
  }
}

function one(db, sql, ...params) {
  const row = db.prepare(sql).get(...params);
  return row ? row.v : undefined;
}

function flag(x) {
  // Never bind a boolean: libsql aborts the process on one
  return x ? 1 : 0;
}

function stateOf(db, fname) {
  const st = states.get(db);
  if (!st) {
    throw new Error(`sqlite-atomic: ${fname}: call load(db) on this ` +
                    'database first');
  }
  return st;
}

function attach(err, atomicError) {
  if (err !== null && (typeof err === 'object' || typeof err === 'function')) {
    try {
      if (err.sqliteAtomicError === undefined) err.sqliteAtomicError = atomicError;
    } catch (e) {
      // a frozen object: it goes on as it is
    }
  }
}

/**
 * Load the extension into db (libsql and better-sqlite3: loadExtension();
 * node:sqlite: enableLoadExtension() around it) and create the TEMP table
 * that JavaScript callbacks go through.  Loading twice is harmless.
 */
function load(db) {
  if (!db || typeof db.loadExtension !== 'function' ||
      typeof db.prepare !== 'function') {
    throw new TypeError('sqlite-atomic: load(db) needs a database with ' +
                        'loadExtension() and prepare() (libsql, ' +
                        'better-sqlite3, node:sqlite)');
  }
  if (typeof db.enableLoadExtension === 'function') {
    db.enableLoadExtension(true);
    try {
      db.loadExtension(getLoadablePath());
    } finally {
      db.enableLoadExtension(false);
    }
  } else {
    db.loadExtension(getLoadablePath());
  }
  db.exec(`CREATE TEMP TABLE IF NOT EXISTS ${JS_TABLE}(id INTEGER NOT NULL)`);
  if (!states.has(db)) states.set(db, new State());
}

function inTransaction(db) {
  if (typeof db.inTransaction === 'boolean') return db.inTransaction;
  if (typeof db.isTransaction === 'boolean') return db.isTransaction;
  return one(db, 'SELECT get_autocommit() AS v') === 0;
}

/** Drop registry entries whose callback the extension discarded. */
function prune(db, st) {
  if (st.busy) return;
  const live = new Set(st.queuing);
  for (const r of db.prepare('SELECT args FROM atomic_pending WHERE sql = ?')
                    .all(JS_SQL)) {
    live.add(Number(JSON.parse(r.args)[0]));
  }
  for (const r of db.prepare(`SELECT id FROM temp.${JS_TABLE}`).all()) {
    live.add(Number(r.id));
  }
  for (const id of [...st.registry.keys()]) {
    if (!live.has(id)) st.registry.delete(id);
  }
  st.limit = Math.max(MIN_LIMIT, 2 * st.registry.size);
}

function settle(db) {
  const st = states.get(db);
  if (st && st.registry.size && !st.busy && !inTransaction(db)) prune(db, st);
}

function nameOf(fn) {
  return fn.name || '<anonymous>';
}

function textOf(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Run the JavaScript callbacks whose commit has happened, in queue order.
 * The helpers call it; call it yourself after ending a block with raw SQL
 * (SELECT atomic_exit()).  A plain callback that throws stops the run: the
 * later JavaScript callbacks are discarded and its error is thrown, with
 * err.sqliteAtomicError saying what was committed.  A robust callback's
 * error goes to the robust error handler and the run goes on.
 */
function runCallbacks(db, immediate = false) {
  const st = states.get(db);
  // Callbacks only run once the connection is back in autocommit mode
  if (!st || st.registry.size === 0 || inTransaction(db)) return;
  const rows = db.prepare(`SELECT rowid AS r, id FROM temp.${JS_TABLE} ` +
                          'ORDER BY rowid').all();
  if (rows.length === 0) return;
  db.prepare(`DELETE FROM temp.${JS_TABLE} WHERE rowid <= ?`)
    .run(rows[rows.length - 1].r);
  const taken = [];
  for (const row of rows) {
    const id = Number(row.id);
    const entry = st.registry.get(id);
    if (entry) {
      st.registry.delete(id);
      taken.push(entry);
    }
  }
  for (let i = 0; i < taken.length; i++) {
    const { fn, robust } = taken[i];
    try {
      fn();
    } catch (err) {
      if (robust) {
        const where = immediate ? 'in on_commit()' :
                                  'in on_commit() during transaction';
        robustErrorHandler(`Error calling ${nameOf(fn)} ${where} ` +
                           `(${textOf(err)}).`, err);
        continue;
      }
      const later = taken.length - 1 - i;
      attach(err, new Error(
        `${FAILED_AFTER_COMMIT} ${nameOf(fn)}: ${textOf(err)} (the ` +
        `transaction was committed; ${later} later JavaScript ` +
        `callback${later === 1 ? ' was' : 's were'} not run)`));
      throw err;
    }
  }
  settle(db);
}

/**
 * Execute a statement that may run callbacks, then the JavaScript ones it
 * committed.  An error of the statement is thrown after the JavaScript
 * callbacks queued before the failure have run.
 */
function runStatement(db, sql, ...params) {
  const st = states.get(db);
  let value;
  let stmtError;
  if (st) st.busy++;
  try {
    value = one(db, sql, ...params);
  } catch (e) {
    stmtError = e;
  } finally {
    if (st) st.busy--;
  }
  try {
    runCallbacks(db);
  } catch (err) {
    if (stmtError !== undefined) attach(err, stmtError);
    throw err;
  }
  if (stmtError !== undefined) throw stmtError;
  return value;
}

/**
 * Django's transaction.atomic(): run fn(block) inside a block and return
 * what it returns.  The outermost block is a transaction, inner ones are
 * savepoints (none with savepoint: false); a durable block must be
 * outermost.  An exception rolls the block back and propagates unchanged,
 * with the extension's error, if exiting failed too, as
 * err.sqliteAtomicError.  After the block, block.kept is true if its work
 * was kept, false if it was rolled back (an exception or the rollback
 * flag).  fn must be synchronous: a Promise is refused.
 */
function atomic(db, fn, options = {}) {
  if (typeof fn !== 'function') {
    throw new TypeError('atomic(db, fn): fn must be a function');
  }
  const { savepoint = true, durable = false } = options || {};
  one(db, `SELECT atomic_enter(${flag(savepoint)}, ${flag(durable)}) AS v`);
  const block = { kept: undefined };
  let result;
  try {
    result = fn(block);
  } catch (err) {
    try {
      one(db, 'SELECT atomic_exit(0) AS v');
    } catch (exitError) {
      attach(err, exitError);
    }
    block.kept = false;
    settle(db);
    throw err;
  }
  if (result !== null && typeof result === 'object' &&
      typeof result.then === 'function') {
    try {
      one(db, 'SELECT atomic_exit(0) AS v');
    } finally {
      block.kept = false;
    }
    throw new TypeError('atomic(): fn returned a Promise; blocks are ' +
                        'synchronous, like the bindings: the block was ' +
                        'rolled back');
  }
  let kept;
  try {
    kept = runStatement(db, 'SELECT atomic_exit(1) AS v');
  } catch (err) {
    // Committed if the failure came after the commit
    const after = (e) => e instanceof Error &&
        e.message.indexOf(FAILED_AFTER_COMMIT) >= 0;
    block.kept = after(err) || after(err && err.sqliteAtomicError);
    settle(db);
    throw err;
  }
  block.kept = Number(kept) === 1;
  settle(db);
  return result;
}

/**
 * Django's on_commit(): call fn() after the outermost block commits;
 * discarded if its block rolls back; called at once outside every block
 * and transaction.  { robust: true }: an error is reported to the robust
 * error handler instead of thrown.
 */
function onCommit(db, fn, options = {}) {
  if (typeof fn !== 'function') {
    throw new TypeError("on_commit()'s callback must be a callable.");
  }
  const st = stateOf(db, 'onCommit()');
  const robust = Boolean(options && options.robust);
  const id = st.nextId++;
  st.registry.set(id, { fn, robust });
  st.queuing.add(id);
  let queued;
  st.busy++;
  try {
    queued = one(db, `SELECT ${robust ? 'on_commit_robust' : 'on_commit'}` +
                     '(?, CAST(? AS INTEGER)) AS v', JS_SQL, id);
  } catch (e) {
    st.registry.delete(id);
    throw e;
  } finally {
    st.queuing.delete(id);
    st.busy--;
  }
  if (Number(queued) === 0) {
    runCallbacks(db, true);
  } else if (st.registry.size > st.limit) {
    prune(db, st);
  }
}

/** Django's set_rollback(). */
function setRollback(db, rollback) {
  one(db, `SELECT set_rollback(${flag(rollback)}) AS v`);
}

/** Django's get_rollback(). */
function getRollback(db) {
  return Number(one(db, 'SELECT get_rollback() AS v')) === 1;
}

/** A savepoint id, or null outside a transaction. */
function savepoint(db) {
  return one(db, 'SELECT savepoint() AS v');
}

function savepointCommit(db, sid) {
  one(db, 'SELECT savepoint_commit(?) AS v', sid);
}

/** Roll back to sid, discarding the callbacks queued after it. */
function savepointRollback(db, sid) {
  one(db, 'SELECT savepoint_rollback(?) AS v', sid);
}

function cleanSavepoints(db) {
  one(db, 'SELECT clean_savepoints() AS v');
}

/** True if no transaction is open. */
function getAutocommit(db) {
  return Number(one(db, 'SELECT get_autocommit() AS v')) === 1;
}

/** false: BEGIN (manual mode); true: run what committed meanwhile. */
function setAutocommit(db, autocommit) {
  runStatement(db, `SELECT set_autocommit(${flag(autocommit)}) AS v`);
  settle(db);
}

/** Django's commit(): COMMIT, then the callbacks waiting for it. */
function commit(db) {
  runStatement(db, 'SELECT atomic_commit() AS v');
  settle(db);
}

/** Django's rollback(): ROLLBACK, discarding the callbacks. */
function rollback(db) {
  one(db, 'SELECT atomic_rollback() AS v');
  settle(db);
}

/** The number of open blocks. */
function depth(db) {
  return Number(one(db, 'SELECT atomic_depth() AS v'));
}

/**
 * The queued callbacks in run order: {seq, sql, args, depth, robust,
 * durable, fn}; fn is the JavaScript function of a JavaScript callback
 * (its sql is the internal INSERT), null for a SQL callback.
 */
function pending(db) {
  const st = states.get(db);
  return db.prepare('SELECT seq, sql, args, depth, robust, durable ' +
                    'FROM atomic_pending').all().map((r) => {
    const args = JSON.parse(r.args);
    let fn = null;
    if (st && r.sql === JS_SQL) {
      const entry = st.registry.get(Number(args[0]));
      if (entry) fn = entry.fn;
    }
    return {
      seq: Number(r.seq), sql: r.sql, args, depth: Number(r.depth),
      robust: Number(r.robust) === 1, durable: Number(r.durable) === 1, fn,
    };
  });
}

/**
 * Where failures of robust callbacks go: handler(message, error), message
 * being Django's "Error calling <name> in on_commit() during transaction
 * (<error>)."  The default writes both to stderr.  Returns the previous
 * handler.
 */
function setRobustErrorHandler(handler) {
  if (typeof handler !== 'function') {
    throw new TypeError('setRobustErrorHandler(handler): a function');
  }
  const previous = robustErrorHandler;
  robustErrorHandler = handler;
  return previous;
}

module.exports = {
  getLoadablePath, load, atomic, onCommit, runCallbacks, setRollback,
  getRollback, savepoint, savepointCommit, savepointRollback,
  cleanSavepoints, getAutocommit, setAutocommit, commit, rollback, depth,
  pending, setRobustErrorHandler,
};
