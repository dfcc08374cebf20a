/*
** txn.c -- temp.atomic_txn, the virtual table through which the atomic
** extension follows the transaction, and the savepoint operations built
** on it.
**
** SCHEMA
**
**   CREATE VIRTUAL TABLE temp.atomic_txn USING atomic_txn;
**
** created when the extension loads (again later if it is missing).  It has
** one column, holds no rows, refuses writes (SQLITE_CONSTRAINT) and cannot
** be used from a trigger or view.  It exists only in TEMP, so joining it to a transaction
** locks nothing in the application's databases.  While a transaction that
** it has joined is open, DROP TABLE refuses to drop it.
**
** HOW IT WORKS
**
** When a transaction the extension cares about starts, atomic_join() runs
** the cached statement "INSERT OR IGNORE INTO temp.atomic_txn VALUES(0)".
** The table ignores the row, but SQLite has called xBegin and added the
** table to the transaction.  From then until the transaction ends SQLite reports to the
** table every savepoint that opens (xSavepoint), is released (xRelease) or
** is rolled back to (xRollbackTo) -- raw SQL savepoints and the statement
** savepoint of every writing statement included -- then xCommit after a
** successful commit or xRollback after any rollback.  These methods keep
** AtomicConn.aLevel[] equal to SQLite's own savepoint stack, discard the
** callbacks that a rollback undid, and turn the blocks into orphans when
** the transaction ends while they are open and the extension did not end
** it (see atomicInt.h).  None of them runs SQL.
**
** Side effect: the statement above resets sqlite3_changes() to 0 when a
** transaction starts through atomic_enter() or savepoint().
*/
#include "atomicInt.h"

typedef struct AtomicTxnVtab AtomicTxnVtab;
typedef struct AtomicTxnCursor AtomicTxnCursor;

struct AtomicTxnVtab {
  sqlite3_vtab base;        /* Base class */
  AtomicConn *p;            /* Connection state (holds one reference) */
};

struct AtomicTxnCursor {
  sqlite3_vtab_cursor base; /* Base class */
};

/*
** xCreate and xConnect.  Only temp.atomic_txn may exist: an instance in
** another schema or under another name would hear nothing useful and
** could confuse the state if written to.
*/
static int txnInit(sqlite3 *db, void *pAux, int argc,
                   const char *const *argv, sqlite3_vtab **ppVtab,
                   char **pzErr){
  AtomicConn *p = (AtomicConn*)pAux;
  AtomicTxnVtab *pTab;
  int rc;
  if( argc<3 || sqlite3_stricmp(argv[1], "temp")!=0
   || sqlite3_stricmp(argv[2], "atomic_txn")!=0
  ){
    *pzErr = sqlite3_mprintf("atomic_txn: this module belongs to the atomic "
                             "extension and only serves temp.atomic_txn");
    return SQLITE_ERROR;
  }
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(unused)");
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
  pTab = atomic_malloc(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->p = p;
  atomic_conn_ref(p);
  *ppVtab = &pTab->base;
  return SQLITE_OK;
}

static int txnConnect(sqlite3 *db, void *pAux, int argc,
                      const char *const *argv, sqlite3_vtab **ppVtab,
                      char **pzErr){
  return txnInit(db, pAux, argc, argv, ppVtab, pzErr);
}

/*
** A table created inside a transaction is added to it by SQLite without
** an xBegin call, so creating it counts as joining.
*/
static int txnCreate(sqlite3 *db, void *pAux, int argc,
                     const char *const *argv, sqlite3_vtab **ppVtab,
                     char **pzErr){
  int rc = txnInit(db, pAux, argc, argv, ppVtab, pzErr);
  if( rc==SQLITE_OK ){
    AtomicConn *p = (AtomicConn*)pAux;
    p->bJoined = 1;
    p->bSchema = 0;
    p->nLevel = 0;
  }
  return rc;
}

static int txnDisconnect(sqlite3_vtab *pVtab){
  AtomicTxnVtab *pTab = (AtomicTxnVtab*)pVtab;
  atomic_conn_unref(pTab->p);
  sqlite3_free(pTab);
  return SQLITE_OK;
}

/*
** DROP TABLE temp.atomic_txn is refused while the table follows an open
** transaction: the extension would lose track of it.
*/
static int txnDestroy(sqlite3_vtab *pVtab){
  AtomicTxnVtab *pTab = (AtomicTxnVtab*)pVtab;
  if( pTab->p->bJoined ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("temp.atomic_txn follows the open "
        "transaction for the atomic extension; drop it after the "
        "transaction ends");
    return SQLITE_ERROR;
  }
  return txnDisconnect(pVtab);
}

static int txnBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  (void)pVtab;
  pInfo->estimatedCost = 1.0;
  pInfo->estimatedRows = 0;
  return SQLITE_OK;
}

static int txnOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor){
  AtomicTxnCursor *pCur = atomic_malloc(sizeof(*pCur));
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *ppCursor = &pCur->base;
  return SQLITE_OK;
}

static int txnClose(sqlite3_vtab_cursor *pCursor){
  sqlite3_free(pCursor);
  return SQLITE_OK;
}

static int txnFilter(sqlite3_vtab_cursor *pCursor, int idxNum,
                     const char *idxStr, int argc, sqlite3_value **argv){
  (void)pCursor; (void)idxNum; (void)idxStr; (void)argc; (void)argv;
  return SQLITE_OK;
}

static int txnNext(sqlite3_vtab_cursor *pCursor){
  (void)pCursor;
  return SQLITE_OK;
}

static int txnEof(sqlite3_vtab_cursor *pCursor){
  (void)pCursor;
  return 1;
}

static int txnColumn(sqlite3_vtab_cursor *pCursor, sqlite3_context *ctx,
                     int i){
  (void)pCursor; (void)ctx; (void)i;
  return SQLITE_OK;
}

static int txnRowid(sqlite3_vtab_cursor *pCursor, sqlite3_int64 *piRowid){
  (void)pCursor;
  *piRowid = 0;
  return SQLITE_OK;
}

/*
** Writes are refused with SQLITE_CONSTRAINT.  The extension's own
** statement is an INSERT OR IGNORE, which SQLite then quietly ignores:
** it counts no change, sets no rowid, leaves no error on the connection,
** and, being one row, needs no statement journal.  For it no message is
** set (SQLite would keep it as the connection's error).
*/
static int txnUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                     sqlite3_int64 *piRowid){
  AtomicConn *p = ((AtomicTxnVtab*)pVtab)->p;
  (void)argc; (void)argv; (void)piRowid;
  if( sqlite3_vtab_on_conflict(p->db)!=SQLITE_IGNORE ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("temp.atomic_txn is read-only");
  }
  return SQLITE_CONSTRAINT;
}

static int txnBegin(sqlite3_vtab *pVtab){
  AtomicConn *p = ((AtomicTxnVtab*)pVtab)->p;
  p->bJoined = 1;
  p->bSchema = 0;
  p->nLevel = 0;
  return SQLITE_OK;
}

static int txnSync(sqlite3_vtab *pVtab){
  (void)pVtab;
  return SQLITE_OK;
}

/*
** The transaction ended: committed if bCommit, else rolled back.  Every
** savepoint and manual savepoint ended with it, and the rollback flag is
** cleared (P3).  If the extension ended it, or no block is open, the
** pending callbacks become ready (commit) or are discarded (rollback).
** If blocks are open and something else ended it, they become orphans
** and the callbacks are discarded (X5).
*/
static void atomic_txn_ended(AtomicConn *p, int bCommit){
  p->bJoined = 0;
  p->bSchema = 0;
  p->nLevel = 0;
  p->nManual = 0;
  p->bRollback = 0;
  p->bBroken = 0;
  if( p->nBlock>0 && !p->bExpectEnd ){
    if( p->eOrphan==ATOMIC_ORPHAN_NONE ){
      p->eOrphan = bCommit ? ATOMIC_ORPHAN_COMMIT : ATOMIC_ORPHAN_ROLLBACK;
    }
    atomic_queue_truncate(&p->pending, 0);
  }else if( bCommit ){
    atomic_queue_move(&p->ready, &p->pending);
  }else{
    atomic_queue_truncate(&p->pending, 0);
  }
}

static int txnCommit(sqlite3_vtab *pVtab){
  atomic_txn_ended(((AtomicTxnVtab*)pVtab)->p, 1);
  return SQLITE_OK;
}

static int txnRollback(sqlite3_vtab *pVtab){
  atomic_txn_ended(((AtomicTxnVtab*)pVtab)->p, 0);
  return SQLITE_OK;
}

/*
** Savepoint iLevel opened.  Entries above it that are still recorded are
** stale and forgotten; missing entries below it opened before the table
** joined the transaction, so they are older than every queued callback.
** The owner is the one the extension announced for its own SAVEPOINT
** statement, or 0.
*/
static int txnSavepoint(sqlite3_vtab *pVtab, int iLevel){
  AtomicConn *p = ((AtomicTxnVtab*)pVtab)->p;
  i64 iOwner = p->iNewOwner;
  int rc;
  p->iNewOwner = 0;
  if( iLevel<0 ) return SQLITE_OK;
  if( iLevel<p->nLevel ) p->nLevel = iLevel;
  if( iLevel>=p->nLevelAlloc ){
    rc = atomic_grow((void**)&p->aLevel, &p->nLevelAlloc, iLevel+1,
                     sizeof(AtomicLevel));
    if( rc!=SQLITE_OK ) return rc;
  }
  while( p->nLevel<iLevel ){
    p->aLevel[p->nLevel].iOwner = 0;
    p->aLevel[p->nLevel].pMark = 0;
    p->nLevel++;
  }
  p->aLevel[iLevel].iOwner = iOwner;
  p->aLevel[iLevel].pMark = p->pending.pLast;
  p->nLevel = iLevel+1;
  return SQLITE_OK;
}

/*
** Savepoint iLevel and every savepoint inside it were released.  Their
** callbacks stay queued: they now belong to the enclosing savepoint.
*/
static int txnRelease(sqlite3_vtab *pVtab, int iLevel){
  AtomicConn *p = ((AtomicTxnVtab*)pVtab)->p;
  if( iLevel<0 ) iLevel = 0;
  if( iLevel<p->nLevel ) p->nLevel = iLevel;
  return SQLITE_OK;
}

/*
** The transaction was rolled back to savepoint iLevel, which stays open;
** -1 is the savepoint that began the transaction.  Everything queued since
** it opened is discarded.
*/
static int txnRollbackTo(sqlite3_vtab *pVtab, int iLevel){
  AtomicConn *p = ((AtomicTxnVtab*)pVtab)->p;
  if( iLevel<0 ){
    p->nLevel = 0;
    atomic_queue_truncate(&p->pending, 0);
  }else if( iLevel<p->nLevel ){
    p->nLevel = iLevel+1;
    atomic_queue_truncate(&p->pending, p->aLevel[iLevel].pMark);
  }
  return SQLITE_OK;
}

static sqlite3_module atomicTxnModule = {
  2,                        /* iVersion: savepoint methods are wanted */
  txnCreate,
  txnConnect,
  txnBestIndex,
  txnDisconnect,
  txnDestroy,
  txnOpen,
  txnClose,
  txnFilter,
  txnNext,
  txnEof,
  txnColumn,
  txnRowid,
  txnUpdate,
  txnBegin,
  txnSync,
  txnCommit,
  txnRollback,
  0,                        /* xFindFunction */
  0,                        /* xRename */
  txnSavepoint,
  txnRelease,
  txnRollbackTo,
  0                         /* xShadowName */
};

/*
** Create temp.atomic_txn if it does not exist.  Returns SQLITE_OK or the
** error, with its message in sqlite3_errmsg().
*/
static int atomic_txn_create(AtomicConn *p){
  return atomic_exec_sql(p,
      "CREATE VIRTUAL TABLE IF NOT EXISTS temp.atomic_txn USING atomic_txn");
}

/*
** Register the atomic_txn module and create temp.atomic_txn.  A failure to
** create the table is not an error here: atomic_join() tries again.
*/
int atomic_txn_register(sqlite3 *db, AtomicConn *p){
  int rc;
  atomic_conn_ref(p);
  rc = sqlite3_create_module_v2(db, "atomic_txn", &atomicTxnModule, p,
                                atomic_conn_unref);
  if( rc==SQLITE_OK ) atomic_txn_create(p);
  return rc;
}

/*
** Make temp.atomic_txn follow the current transaction, creating the table
** if it is missing (never created, dropped, or its creation rolled back).
** Returns SQLITE_OK, or an error with its message in sqlite3_errmsg():
** with PRAGMA query_only=1 for example, nothing may write, not even TEMP.
*/
int atomic_join(AtomicConn *p){
  int rc;
  if( p->bJoined ) return SQLITE_OK;
  rc = atomic_exec(p, ATOMIC_STMT_JOIN);
  if( rc!=SQLITE_OK && !p->bJoined ){
    sqlite3_finalize(p->apStmt[ATOMIC_STMT_JOIN]);
    p->apStmt[ATOMIC_STMT_JOIN] = 0;
    rc = atomic_txn_create(p);
    if( rc==SQLITE_OK && !p->bJoined ) rc = atomic_exec(p, ATOMIC_STMT_JOIN);
  }
  if( rc==SQLITE_OK && !p->bJoined ) rc = SQLITE_INTERNAL;
  return rc;
}

/*
** Open a savepoint owned by iOwner: the block savepoint (zSql NULL) or
** the statement zSql.  On success *piLevel is its level.  Returns
** SQLITE_OK or an error with its message in sqlite3_errmsg(); SQLITE_BUSY
** means a statement that writes is running.
*/
int atomic_sp_open(AtomicConn *p, i64 iOwner, const char *zSql,
                   int *piLevel){
  int rc;
  p->iNewOwner = iOwner;
  rc = zSql ? atomic_exec_sql(p, zSql) : atomic_exec(p, ATOMIC_STMT_SAVEPOINT);
  p->iNewOwner = 0;
  if( rc==SQLITE_OK ){
    if( atomic_level_alive(p, p->nLevel-1, iOwner) ){
      *piLevel = p->nLevel-1;
    }else{
      rc = SQLITE_INTERNAL;
    }
  }
  return rc;
}

/*
** Roll back to (bRollback) and/or release (bRelease) the savepoint at
** level iLevel made by iOwner, whose name is zName, or the block
** savepoint name if zName is NULL.
**
** SQLite applies ROLLBACK TO and RELEASE to the innermost savepoint with
** the name.  If raw SQL opened another savepoint with the same name inside
** ours, that one is hit first; then this releases it and tries again, so
** the operation always reaches the savepoint it was meant for.  Returns
** SQLITE_OK or an error with its message in sqlite3_errmsg().
*/
int atomic_sp_close(AtomicConn *p, int iLevel, i64 iOwner, int bRollback,
                    int bRelease, const char *zName){
  char *zRollbackTo = 0;
  char *zRelease = 0;
  int rc = SQLITE_OK;
  if( !atomic_level_alive(p, iLevel, iOwner) ) return SQLITE_INTERNAL;
  if( zName ){
    zRollbackTo = atomic_mprintf("ROLLBACK TO \"%w\"", zName);
    zRelease = atomic_mprintf("RELEASE \"%w\"", zName);
    if( zRollbackTo==0 || zRelease==0 ) rc = SQLITE_NOMEM;
  }
  while( rc==SQLITE_OK && bRollback ){
    int nBefore = p->nLevel;
    rc = zName ? atomic_exec_sql(p, zRollbackTo)
               : atomic_exec(p, ATOMIC_STMT_ROLLBACKTO);
    if( rc!=SQLITE_OK ) break;
    if( p->nLevel==iLevel+1 && atomic_level_alive(p, iLevel, iOwner) ) break;
    if( !atomic_level_alive(p, iLevel, iOwner) || p->nLevel>nBefore ){
      rc = SQLITE_INTERNAL;
      break;
    }
    rc = zName ? atomic_exec_sql(p, zRelease)
               : atomic_exec(p, ATOMIC_STMT_RELEASE);
  }
  while( rc==SQLITE_OK && bRelease && atomic_level_alive(p, iLevel, iOwner) ){
    int nBefore = p->nLevel;
    rc = zName ? atomic_exec_sql(p, zRelease)
               : atomic_exec(p, ATOMIC_STMT_RELEASE);
    if( rc==SQLITE_OK && p->nLevel>=nBefore ) rc = SQLITE_INTERNAL;
  }
  sqlite3_free(zRollbackTo);
  sqlite3_free(zRelease);
  return rc;
}

/*
** End the transaction with the extension's own COMMIT (bCommit) or
** ROLLBACK, telling temp.atomic_txn to expect it.  Returns SQLITE_OK or
** the error; *pzErr is then a copy of its message (NULL on OOM).
*/
int atomic_end_txn(AtomicConn *p, int bCommit, char **pzErr){
  int rc;
  p->bExpectEnd = 1;
  rc = atomic_exec(p, bCommit ? ATOMIC_STMT_COMMIT : ATOMIC_STMT_ROLLBACK);
  p->bExpectEnd = 0;
  *pzErr = rc ? atomic_mprintf("%s", sqlite3_errmsg(p->db)) : 0;
  return rc;
}
