-- demo.sql -- the batch-of-orders story from Django's documentation, in the
-- sqlite3 CLI: one transaction for the batch, one inner block per order, a
-- failing order rolled back alone, the rest committed, and on_commit()
-- callbacks that fire only for the orders that were committed.
--
--   make demo        (or: sqlite3 < sql/demo.sql, after make)
.bail on
.load ./atomic
.mode list
.separator ' | '

CREATE TABLE stock(item TEXT PRIMARY KEY, left INTEGER NOT NULL);
CREATE TABLE orders(
  id INTEGER PRIMARY KEY,
  customer TEXT NOT NULL,
  item TEXT NOT NULL,
  qty INTEGER NOT NULL CHECK(qty > 0)
);
-- What the callbacks "send" after the commit: one message per order
CREATE TABLE outbox(order_id INTEGER, message TEXT);
INSERT INTO stock VALUES('widget', 10), ('gadget', 1);

.print 'Stock before the batch: 10 widgets, 1 gadget.'
.print ''
.print '1. The batch opens one transaction (the outermost block):'
SELECT '   atomic_enter() -> depth ' || atomic_enter();

.print ''
.print '2. Order 1, alice wants 3 widgets; its own block is a savepoint:'
SELECT '   atomic_enter() -> depth ' || atomic_enter();
INSERT INTO orders VALUES(1, 'alice', 'widget', 3);
UPDATE stock SET left = left - 3 WHERE item = 'widget';
SELECT '   on_commit() -> ' || on_commit('INSERT INTO outbox VALUES(?1, ?2)',
         1, 'alice: 3 widgets are on their way') || ' (queued, not run)';
SELECT '   atomic_exit() -> ' || atomic_exit() || ' (kept)';

.print ''
.print '3. Order 2, bob wants 2 gadgets, but only 1 is left.  The order'
.print '   notices and marks its block for rollback with set_rollback(1):'
SELECT '   atomic_enter() -> depth ' || atomic_enter();
INSERT INTO orders VALUES(2, 'bob', 'gadget', 2);
UPDATE stock SET left = left - 2 WHERE item = 'gadget';
SELECT '   on_commit() -> ' || on_commit('INSERT INTO outbox VALUES(?1, ?2)',
         2, 'bob: 2 gadgets are on their way') || ' (queued, not run)';
SELECT '   stock of gadgets is now ' || left || ', so set_rollback(' ||
       set_rollback(left < 0) || ')'
  FROM stock WHERE item = 'gadget';
SELECT '   atomic_exit() -> ' || atomic_exit() ||
       ' (rolled back: the order, the stock change and its callback)';

.print ''
.print '4. Order 3, carol wants 4 widgets, but her card is declined after'
.print '   the order was written.  The application closes the block with'
.print '   atomic_exit(0), as a Python "except" around the block would:'
SELECT '   atomic_enter() -> depth ' || atomic_enter();
INSERT INTO orders VALUES(3, 'carol', 'widget', 4);
UPDATE stock SET left = left - 4 WHERE item = 'widget';
SELECT '   on_commit() -> ' || on_commit('INSERT INTO outbox VALUES(?1, ?2)',
         3, 'carol: 4 widgets are on their way') || ' (queued, not run)';
SELECT '   atomic_exit(0) -> ' || atomic_exit(0) || ' (rolled back)';

.print ''
.print '5. Order 4, dave wants 5 widgets:'
SELECT '   atomic_enter() -> depth ' || atomic_enter();
INSERT INTO orders VALUES(4, 'dave', 'widget', 5);
UPDATE stock SET left = left - 5 WHERE item = 'widget';
SELECT '   on_commit() -> ' || on_commit('INSERT INTO outbox VALUES(?1, ?2)',
         4, 'dave: 5 widgets are on their way') || ' (queued, not run)';
SELECT '   atomic_exit() -> ' || atomic_exit() || ' (kept)';

.print ''
.print '6. Before the commit, the callbacks wait (table atomic_pending) and'
.print '   the outbox is empty:'
SELECT '   ' || seq, sql, args FROM atomic_pending;
SELECT '   outbox rows: ' || count(*) FROM outbox;

.print ''
.print '7. The batch commits; then, and only then, the callbacks run:'
SELECT '   atomic_exit() -> ' || atomic_exit() || ' (committed), depth ' ||
       atomic_depth();

.print ''
.print 'Orders kept:'
SELECT '   ' || id, customer, qty || ' ' || item || 's' FROM orders;
.print 'Stock after the batch:'
SELECT '   ' || item, left FROM stock;
.print 'Outbox, written by the callbacks after the commit (no message for'
.print 'the rolled-back orders of bob and carol):'
SELECT '   ' || order_id, message FROM outbox;

.print ''
.print '8. A batch that fails as a whole: the outermost block rolls back,'
.print '   and none of its callbacks ever runs.'
SELECT '   atomic_enter() -> depth ' || atomic_enter();
INSERT INTO orders VALUES(5, 'erin', 'widget', 1);
SELECT '   on_commit() -> ' || on_commit('INSERT INTO outbox VALUES(?1, ?2)',
         5, 'erin: never sent') || ' (queued)';
SELECT '   atomic_exit(0) -> ' || atomic_exit(0);
SELECT '   orders: ' || count(*) || ', outbox: ' ||
       (SELECT count(*) FROM outbox) FROM orders;
