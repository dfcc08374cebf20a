/*
** pending.c -- the eponymous virtual table atomic_pending, one row per
** queued callback, in the order they will run.
**
**   SELECT seq, sql, args, depth, robust, durable FROM atomic_pending;
**
**   seq      INTEGER  1, 2, ... in run order
**   sql      TEXT     the statement, as given to on_commit()
**   args     TEXT     its arguments as a JSON array; a blob appears as the
**                     JSON string "x'<hex>'"
**   depth    INTEGER  atomic_depth() when it was queued
**   robust   INTEGER  1 if queued by on_commit_robust()
**   durable  INTEGER  always 0: durable callbacks are not part of this
**                     version
**
** Callbacks of committed work that wait to run (C9) come first, then those
** of the current transaction.  The table is read-only and innocuous.
**
** HOW IT WORKS
**
** xFilter takes a snapshot: an array of the queued callbacks, each with a
** reference held, so that a callback discarded while a scan is under way
** (SELECT atomic_exit(0) FROM atomic_pending) stays valid until the cursor
** closes.
**
** The module has a second job, under the name atomic_close_guard.  While
** an instance is connected, the connection state may keep prepared
** statements (conn.c).  SQLite disconnects virtual tables in
** sqlite3_close() before it checks for unfinalized statements, and
** xDisconnect here finalizes them when the last instance goes, so
** sqlite3_close() returns SQLITE_OK whatever state the connection is in.
*/
#include "atomicInt.h"

typedef struct AtomicPendingVtab AtomicPendingVtab;
typedef struct AtomicPendingCursor AtomicPendingCursor;

struct AtomicPendingVtab {
  sqlite3_vtab base;        /* Base class */
  AtomicConn *p;            /* Connection state (holds one reference) */
};

struct AtomicPendingCursor {
  sqlite3_vtab_cursor base; /* Base class */
  AtomicCallback **aCb;     /* Snapshot, each with a reference held */
  int nCb;                  /* Entries in aCb[] */
  int iRow;                 /* Current row, 0-based */
};

#define PENDING_SEQ      0
#define PENDING_SQL      1
#define PENDING_ARGS     2
#define PENDING_DEPTH    3
#define PENDING_ROBUST   4
#define PENDING_DURABLE  5

static int pendingConnect(sqlite3 *db, void *pAux, int argc,
                          const char *const *argv, sqlite3_vtab **ppVtab,
                          char **pzErr){
  AtomicConn *p = (AtomicConn*)pAux;
  AtomicPendingVtab *pTab;
  int rc;
  (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(seq INTEGER, sql TEXT, "
                "args TEXT, depth INTEGER, robust INTEGER, durable INTEGER)");
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
  pTab = atomicMalloc(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->p = p;
  atomicConnRef(p);
  p->bGuard++;
  *ppVtab = &pTab->base;
  return SQLITE_OK;
}

/*
** Also the end of every statement the connection state keeps: see the
** header comment.
*/
static int pendingDisconnect(sqlite3_vtab *pVtab){
  AtomicPendingVtab *pTab = (AtomicPendingVtab*)pVtab;
  AtomicConn *p = pTab->p;
  if( --p->bGuard==0 ) atomicFinalizeAll(p);
  atomicConnUnref(p);
  sqlite3_free(pTab);
  return SQLITE_OK;
}

static int pendingBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  (void)pVtab;
  pInfo->estimatedCost = 1000.0;
  pInfo->estimatedRows = 1000;
  return SQLITE_OK;
}

static int pendingOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor){
  AtomicPendingCursor *pCur = atomicMalloc(sizeof(*pCur));
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *ppCursor = &pCur->base;
  return SQLITE_OK;
}

static void pendingReset(AtomicPendingCursor *pCur){
  int i;
  for(i=0; i<pCur->nCb; i++) atomicCallbackUnref(pCur->aCb[i]);
  sqlite3_free(pCur->aCb);
  pCur->aCb = 0;
  pCur->nCb = 0;
  pCur->iRow = 0;
}

static int pendingClose(sqlite3_vtab_cursor *pCursor){
  pendingReset((AtomicPendingCursor*)pCursor);
  sqlite3_free(pCursor);
  return SQLITE_OK;
}

static int pendingFilter(sqlite3_vtab_cursor *pCursor, int idxNum,
                         const char *idxStr, int argc, sqlite3_value **argv){
  AtomicPendingCursor *pCur = (AtomicPendingCursor*)pCursor;
  AtomicConn *p = ((AtomicPendingVtab*)pCursor->pVtab)->p;
  AtomicQueue *aQueue[2];
  AtomicCallback *pCb;
  int nAlloc = 0;
  int i;
  (void)idxNum; (void)idxStr; (void)argc; (void)argv;
  pendingReset(pCur);
  atomicSync(p);
  aQueue[0] = &p->ready;
  aQueue[1] = &p->pending;
  for(i=0; i<2; i++){
    for(pCb=aQueue[i]->pFirst; pCb; pCb=pCb->pNext){
      if( atomicGrow((void**)&pCur->aCb, &nAlloc, pCur->nCb+1,
                      sizeof(AtomicCallback*)) ){
        return SQLITE_NOMEM;
      }
      pCb->nRef++;
      pCur->aCb[pCur->nCb++] = pCb;
    }
  }
  return SQLITE_OK;
}

static int pendingNext(sqlite3_vtab_cursor *pCursor){
  ((AtomicPendingCursor*)pCursor)->iRow++;
  return SQLITE_OK;
}

static int pendingEof(sqlite3_vtab_cursor *pCursor){
  AtomicPendingCursor *pCur = (AtomicPendingCursor*)pCursor;
  return pCur->iRow>=pCur->nCb;
}

static int pendingColumn(sqlite3_vtab_cursor *pCursor, sqlite3_context *ctx,
                         int iCol){
  AtomicPendingCursor *pCur = (AtomicPendingCursor*)pCursor;
  AtomicCallback *pCb = pCur->aCb[pCur->iRow];
  switch( iCol ){
    case PENDING_SEQ:
      sqlite3_result_int(ctx, pCur->iRow+1);
      break;
    case PENDING_SQL:
      sqlite3_result_text(ctx, pCb->pSql->zSql, pCb->pSql->nSql,
                          SQLITE_TRANSIENT);
      break;
    case PENDING_ARGS: {
      char *z = atomicArgsJson(pCb);
      if( z==0 ) return SQLITE_NOMEM;
      sqlite3_result_text(ctx, z, -1, sqlite3_free);
      break;
    }
    case PENDING_DEPTH:
      sqlite3_result_int(ctx, pCb->iDepth);
      break;
    case PENDING_ROBUST:
      sqlite3_result_int(ctx, pCb->bRobust);
      break;
    default:
      sqlite3_result_int(ctx, 0);
      break;
  }
  return SQLITE_OK;
}

static int pendingRowid(sqlite3_vtab_cursor *pCursor, sqlite3_int64 *piRowid){
  *piRowid = ((AtomicPendingCursor*)pCursor)->iRow+1;
  return SQLITE_OK;
}

static sqlite3_module atomicPendingModule = {
  0,                        /* iVersion */
  0,                        /* xCreate: eponymous only */
  pendingConnect,
  pendingBestIndex,
  pendingDisconnect,
  0,                        /* xDestroy */
  pendingOpen,
  pendingClose,
  pendingFilter,
  pendingNext,
  pendingEof,
  pendingColumn,
  pendingRowid,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

/*
** Register atomic_pending on db, or (bGuard) the same module again as
** atomic_close_guard, the instance the connection state connects to keep
** statements (stmt.c): an application's own table named atomic_pending
** would hide the first one, but nobody names a table atomic_close_guard.
** Each registration holds one reference to p (released by its xDestroy,
** also if it fails).
*/
ATM_PRIVATE int atomicPendingRegister(sqlite3 *db, AtomicConn *p,
                                      int bGuard){
  atomicConnRef(p);
  return sqlite3_create_module_v2(db,
      bGuard ? "atomic_close_guard" : "atomic_pending",
      &atomicPendingModule, p, atomicConnUnref);
}
