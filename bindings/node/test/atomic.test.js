// The Node package sqlite-atomic through libsql, as a user installs it from
// its tarball: loading, blocks (Django's AtomicTests that make sense here),
// exceptions that go through a block unchanged, JavaScript callbacks after
// the commit (Django's transaction_hooks tests), robust failures, manual
// mode, pending(), and a registry that discarded callbacks do not grow.
// SPDX-License-Identifier: MIT
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const Database = require('libsql');
const sa = require('sqlite-atomic');
const { atomic, onCommit, load } = sa;

const BROKEN = "An error occurred in the current transaction. You can't " +
  "execute queries until the end of the 'atomic' block.";
const DURABLE = 'A durable atomic block cannot be nested within another ' +
  'atomic block.';

let n = 0;
function fresh() {
  const file = `t${process.pid}_${++n}.db`;
  for (const f of [file, file + '-journal']) fs.rmSync(f, { force: true });
  const db = new Database(file);
  load(db);
  db.exec('CREATE TABLE reporter(id INTEGER PRIMARY KEY, name TEXT);' +
          'CREATE TABLE thing(num INTEGER); CREATE TABLE log(x)');
  return db;
}
const create = (db, name, id = null) =>
  db.prepare('INSERT INTO reporter(id, name) VALUES(?, ?)').run(id, name);
const names = (db) =>
  db.prepare('SELECT name FROM reporter ORDER BY name').all().map((r) => r.name);
const col = (db, sql) => db.prepare(sql).all().map((r) => Object.values(r)[0]);
const depth = (db) => sa.depth(db);

test('package: the loadable path is the installed atomic.so', () => {
  const p = sa.getLoadablePath();
  assert.equal(path.basename(p), 'atomic.so');
  assert.ok(fs.existsSync(p));
  assert.equal(p, path.join(path.dirname(require.resolve('sqlite-atomic')), 'atomic.so'));
  assert.match(p, /node_modules[/\\]sqlite-atomic[/\\]atomic\.so$/);
});

test('package: its version is the extension version', () => {
  const db = fresh();
  const pkg = require('sqlite-atomic/package.json');
  assert.equal(pkg.version, db.prepare('SELECT atomic_version() AS v').get().v);
  assert.equal(pkg.license, 'MIT');
  assert.ok(fs.existsSync(path.join(path.dirname(sa.getLoadablePath()), 'LICENSE')));
});

test('load: twice keeps the blocks and the callbacks', () => {
  const db = fresh();
  const done = [];
  atomic(db, () => {
    onCommit(db, () => done.push('kept'));
    load(db);
    assert.equal(depth(db), 1);
  });
  assert.deepEqual(done, ['kept']);
});

test('load: onCommit() without load() says what to do', () => {
  const db = new Database(':memory:');
  db.loadExtension(sa.getLoadablePath());
  assert.throws(() => onCommit(db, () => {}),
                { message: 'sqlite-atomic: onCommit(): call load(db) on this database first' });
});

test('AtomicTests: commit, rollback, nesting, savepoint=false', () => {
  const db = fresh();
  atomic(db, () => create(db, 'Tintin'));
  assert.deepEqual(names(db), ['Tintin']);
  assert.throws(() => atomic(db, () => { create(db, 'Haddock'); throw new Error('Oops'); }),
                { message: 'Oops' });
  assert.deepEqual(names(db), ['Tintin']);
  // nested commit, inner rollback caught in the outer block
  atomic(db, () => {
    create(db, 'Archibald');
    assert.throws(() => atomic(db, () => { create(db, 'Calculus'); throw new Error('Oops'); }));
  });
  assert.deepEqual(names(db), ['Archibald', 'Tintin']);
  // merged (savepoint: false) rollback takes the outer block with it
  atomic(db, () => {
    create(db, 'Nestor');
    assert.throws(() => atomic(db, () => { throw new Error('Oops'); }, { savepoint: false }));
    assert.equal(sa.getRollback(db), true);
    assert.throws(() => onCommit(db, () => {}), (e) => e.message.startsWith(`on_commit(): ${BROKEN}`));
  });
  assert.deepEqual(names(db), ['Archibald', 'Tintin']);
});

test('AtomicTests: the rollback flag, visible as block.kept', () => {
  const db = fresh();
  let inner;
  const value = atomic(db, (outer) => {
    create(db, 'Tintin');
    atomic(db, (b) => { inner = b; create(db, 'Haddock'); sa.setRollback(db, true); });
    assert.equal(inner.kept, false);
    assert.equal(outer.kept, undefined);
    return 42;
  });
  assert.equal(value, 42);
  assert.deepEqual(names(db), ['Tintin']);
  let block;
  atomic(db, (b) => { block = b; create(db, 'Haddock'); sa.setRollback(db, true); });
  assert.equal(block.kept, false);
  assert.deepEqual(names(db), ['Tintin']);
});

test('AtomicTests: durable', () => {
  const db = fresh();
  atomic(db, () => {
    create(db, 'Tintin');
    assert.throws(() => atomic(db, () => {}, { durable: true }),
                  (e) => e.message.startsWith(`atomic_enter(): ${DURABLE}`));
  }, { durable: true });
  assert.deepEqual(names(db), ['Tintin']);
});

test('exceptions: propagate unchanged; the extension error is attached', () => {
  const db = fresh();
  const mine = new RangeError('mine');
  let caught;
  try {
    atomic(db, () => { create(db, 'x'); throw mine; });
  } catch (e) { caught = e; }
  assert.equal(caught, mine);
  assert.equal(caught.sqliteAtomicError, undefined);
  // The transaction ended behind the blocks' back: the original still wins
  const other = new TypeError('the application error');
  try {
    atomic(db, () => atomic(db, () => { create(db, 'y'); db.exec('ROLLBACK'); throw other; }));
  } catch (e) { caught = e; }
  assert.equal(caught, other);
  assert.equal(caught.message, 'the application error');
  assert.ok(caught.sqliteAtomicError.message.startsWith(
    "atomic_exit(): the transaction was rolled back outside of the 'atomic' block"),
    caught.sqliteAtomicError.message);
  assert.equal(depth(db), 0);
  assert.deepEqual(names(db), []);
  // A thrown non-object goes through as it is
  assert.throws(() => atomic(db, () => { throw 'text'; }), (e) => e === 'text');
  assert.equal(depth(db), 0);
});

test('exceptions: a Promise is refused and the block rolled back', () => {
  const db = fresh();
  let block;
  assert.throws(() => atomic(db, async (b) => { block = b; create(db, 'z'); }),
                /fn returned a Promise/);
  assert.equal(block.kept, false);
  assert.equal(depth(db), 0);
  assert.deepEqual(names(db), []);
});

function hooks() {
  const db = fresh();
  const notified = [];
  const notify = (id) => { if (id === 'error') throw new Error('forced'); notified.push(id); };
  const doIt = (num) => {
    db.prepare('INSERT INTO thing(num) VALUES(?)').run(num);
    onCommit(db, () => notify(num));
  };
  const done = () => ({ notified, things: col(db, 'SELECT num FROM thing ORDER BY num') });
  return { db, notify, doIt, done, notified };
}

test('hooks: run at once outside a block, after the commit inside one', () => {
  const h = hooks();
  h.doIt(1);
  assert.deepEqual(h.notified, [1]);
  atomic(h.db, () => { h.doIt(2); assert.deepEqual(h.notified, [1]); });
  assert.deepEqual(h.done(), { notified: [1, 2], things: [1, 2] });
});

test('hooks: discarded with rolled-back blocks, in order otherwise', () => {
  const h = hooks();
  atomic(h.db, () => {
    atomic(h.db, () => h.doIt(1));
    assert.throws(() => atomic(h.db, () => { h.doIt(2); throw new Error('x'); }));
    h.doIt(3);
    atomic(h.db, () => atomic(h.db, () => h.doIt(4)));
    const sid = sa.savepoint(h.db);
    h.doIt(5);
    sa.savepointRollback(h.db, sid);
    h.doIt(6);
  });
  assert.deepEqual(h.done(), { notified: [1, 3, 4, 6], things: [1, 3, 4, 6] });
  assert.throws(() => atomic(h.db, () => { h.doIt(7); throw new Error('x'); }));
  assert.deepEqual(h.done(), { notified: [1, 3, 4, 6], things: [1, 3, 4, 6] });
});

test('hooks: hook in hook runs 1, 11, 2, 12', () => {
  const h = hooks();
  const cb = (i, addHook) => atomic(h.db, () => {
    if (addHook) onCommit(h.db, () => cb(i + 10, false));
    h.db.prepare('INSERT INTO thing(num) VALUES(?)').run(i);
    h.notify(i);
  });
  atomic(h.db, () => {
    onCommit(h.db, () => cb(1, true));
    onCommit(h.db, () => cb(2, true));
  });
  assert.deepEqual(h.done(), { notified: [1, 11, 2, 12], things: [1, 2, 11, 12] });
});

test('hooks: a failing callback throws its own error after the commit', () => {
  const h = hooks();
  let caught;
  let block;
  try {
    atomic(h.db, (b) => {
      block = b;
      h.doIt(1);
      onCommit(h.db, () => h.notify('error'));
      h.doIt(2);
    });
  } catch (e) { caught = e; }
  assert.equal(caught.message, 'forced');
  assert.equal(caught.sqliteAtomicError.message,
               'on_commit callback failed after commit: <anonymous>: forced (the ' +
               'transaction was committed; 1 later JavaScript callback was not run)');
  assert.equal(block.kept, true);
  assert.deepEqual(h.done(), { notified: [1], things: [1, 2] });
  atomic(h.db, () => h.doIt(3));
  assert.deepEqual(h.done(), { notified: [1, 3], things: [1, 2, 3] });
});

test('hooks: robust failures go to the handler and the run goes on', () => {
  const h = hooks();
  const seen = [];
  const previous = sa.setRobustErrorHandler((message, error) => seen.push([message, error.message]));
  try {
    function robustCallback() { throw new Error('robust callback'); }
    onCommit(h.db, robustCallback, { robust: true });
    atomic(h.db, () => {
      onCommit(h.db, robustCallback, { robust: true });
      h.doIt(1);
    });
  } finally {
    sa.setRobustErrorHandler(previous);
  }
  assert.deepEqual(seen, [
    ['Error calling robustCallback in on_commit() (robust callback).', 'robust callback'],
    ['Error calling robustCallback in on_commit() during transaction (robust callback).',
     'robust callback'],
  ]);
  assert.deepEqual(h.done(), { notified: [1], things: [1] });
});

test('hooks: manual mode refuses onCommit() outside a block; commit() runs them', () => {
  const h = hooks();
  sa.setAutocommit(h.db, false);
  assert.throws(() => onCommit(h.db, () => h.notify('error')),
                /on_commit\(\) cannot be used in manual transaction management/);
  atomic(h.db, () => h.doIt(1));
  assert.deepEqual(h.notified, []);
  sa.commit(h.db);
  assert.deepEqual(h.done(), { notified: [1], things: [1] });
  sa.setAutocommit(h.db, true);
  sa.setAutocommit(h.db, false);
  atomic(h.db, () => h.doIt(2));
  sa.rollback(h.db);
  sa.setAutocommit(h.db, true);
  assert.deepEqual(h.done(), { notified: [1], things: [1] });
});

test('hooks: JavaScript callbacks run after the SQL callbacks of the same commit', () => {
  const db = fresh();
  const seen = [];
  atomic(db, () => {
    db.prepare("SELECT on_commit('INSERT INTO log VALUES(?1)', 'sql1')").get();
    onCommit(db, () => seen.push(['js2', col(db, 'SELECT x FROM log ORDER BY rowid')]));
    db.prepare("SELECT on_commit('INSERT INTO log VALUES(?1)', 'sql3')").get();
  });
  assert.deepEqual(seen, [['js2', ['sql1', 'sql3']]]);
});

test('hooks: a block ended with raw SQL leaves them to runCallbacks()', () => {
  const db = fresh();
  const done = [];
  db.prepare('SELECT atomic_enter()').get();
  onCommit(db, () => done.push('later'));
  db.prepare('SELECT atomic_exit()').get();
  assert.deepEqual(done, []);
  sa.runCallbacks(db);
  assert.deepEqual(done, ['later']);
});

test('pending() lists JavaScript and SQL callbacks', () => {
  const db = fresh();
  const f = () => {};
  let got;
  atomic(db, () => {
    onCommit(db, f);
    atomic(db, () => {
      db.prepare("SELECT on_commit_robust('INSERT INTO log VALUES(?1)', 1.5)").get();
      onCommit(db, f, { robust: true });
      got = sa.pending(db);
    });
    sa.setRollback(db, true);
  });
  const js = 'INSERT INTO temp.atomic_js_callbacks(id) VALUES(?1)';
  assert.deepEqual(got.map((p) => [p.seq, p.sql, p.depth, p.robust, p.durable, p.fn]), [
    [1, js, 1, false, false, f],
    [2, 'INSERT INTO log VALUES(?1)', 2, true, false, null],
    [3, js, 2, true, false, f],
  ]);
  assert.deepEqual(got[1].args, [1.5]);
  assert.deepEqual(sa.pending(db), []);
});

test('registry: discarded callbacks leave nothing behind', async () => {
  // Seen from outside: a discarded function is garbage (node --expose-gc)
  assert.equal(typeof global.gc, 'function', 'run node with --expose-gc');
  const db = fresh();
  const ran = [];
  const discarded = [];
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const alive = async () => {
    await tick();
    global.gc();
    return discarded.filter((r) => r.deref() !== undefined).length;
  };
  db.prepare('SELECT atomic_enter()').get();
  for (let i = 0; i < 3000; i++) {
    const fn = () => ran.push(i);
    try {
      atomic(db, () => { onCommit(db, fn); if (i % 3) throw new Error('x'); });
    } catch (e) {
      discarded.push(new WeakRef(fn));
    }
  }
  assert.equal(sa.pending(db).length, 1000);
  // Inside the block: at most 256 more than the 1000 live ones are kept
  const inside = await alive();
  assert.ok(inside <= 1000 + 256, `${inside} discarded functions alive`);
  assert.ok(inside < 2000);
  atomic(db, () => {}); // an inner block; the outer one ends below
  db.prepare('SELECT atomic_exit()').get();
  sa.runCallbacks(db);
  assert.deepEqual(ran, Array.from({ length: 1000 }, (_, k) => 3 * k));
  assert.equal(await alive(), 0);
});

test('registry: nothing kept at all when every block rolls back', async () => {
  const db = fresh();
  const discarded = [];
  atomic(db, () => {
    for (let i = 0; i < 2000; i++) {
      const fn = () => { throw new Error('must not run'); };
      discarded.push(new WeakRef(fn));
      try { atomic(db, () => { onCommit(db, fn); throw new Error('x'); }); } catch (e) { /* */ }
    }
  });
  await new Promise((resolve) => setImmediate(resolve));
  global.gc();
  assert.equal(discarded.filter((r) => r.deref() !== undefined).length, 0);
});
