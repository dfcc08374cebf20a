/*
** txn.c -- temp.atomic_txn, the virtual table through which the atomic
** extension follows the transaction, and the statements that open and
** end savepoints and transactions, each reporting what SQLite really did.
**
** SCHEMA
**
**   CREATE VIRTUAL TABLE temp.atomic_txn USING atomic_txn;
**
** created when the extension loads in autocommit mode, and otherwise
** when it is first needed (again later if it is dropped, or TEMP is
** reset by PRAGMA temp_store).  One column, no rows; it refuses writes
** (SQLITE_CONSTRAINT) and cannot be used from a trigger or view.  It
** exists only in TEMP, so joining it to a transaction locks nothing in
** the application's databases.  While it follows a transaction, DROP
** TABLE refuses to drop it.
**
** HOW IT WORKS
**
** When a transaction the extension cares about starts, atomicJoin() runs
** the kept statement "INSERT OR IGNORE INTO temp.atomic_txn VALUES(0)".
** The table ignores the row, but SQLite has called xBegin and added the
** table to the transaction.  From then until the transaction ends SQLite
** reports to it every savepoint that opens (xSavepoint), is released
** (xRelease) or is rolled back to (xRollbackTo) -- raw SQL savepoints and
** the statement savepoint of every writing statement included -- then
** xCommit after a successful commit or xRollback after any rollback.  The
** methods hand each report to the state machine (state.c); none runs SQL.
**
** A table created inside a transaction is added to it without xBegin, and
** SQLite then tells it of rollbacks only to savepoints opened after it;
** the state is "blind" until one opens, and atomicJoin() opens and
** releases one at once so that the older levels are known.
**
** The functions below run a statement and then ask the state what SQLite
** reported, rather than trusting the return code: a COMMIT can fail after
** it committed (a progress handler that fires at its end), an interrupted
** ROLLBACK does nothing, and an authorizer can make any of them a no-op.
**
** Side effect: the join resets sqlite3_changes() to 0 when a transaction
** starts through atomic_enter() or savepoint().
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
** The state that instance pVtab reports to, or NULL if it does not follow
** the transaction: none does (the table took part in the transaction of
** its own CREATE, or of an application's write to it, which the extension
** does not follow), or another instance does.  After a schema reset in a
** transaction (DETACH) the application could connect a second instance and
** join it too; only the first one speaks, so nothing is reported twice.
*/
static AtomicConn *txnConnOf(sqlite3_vtab *pVtab){
  AtomicConn *p = ((AtomicTxnVtab*)pVtab)->p;
  assert( p->bJoined || p->pJoinedTab==0 );
  return p->pJoinedTab==pVtab ? p : 0;
}

/*
** xCreate and xConnect.  Only temp.atomic_txn may exist: an instance in
** another schema or under another name would hear nothing useful.
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
  pTab = atomicMalloc(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->p = p;
  atomicConnRef(p);
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
** an xBegin call; atomicJoin() counts that as joining once the CREATE
** statement succeeded (until then SQLite may still fail to add it).
*/
static int txnCreate(sqlite3 *db, void *pAux, int argc,
                     const char *const *argv, sqlite3_vtab **ppVtab,
                     char **pzErr){
  int rc = txnInit(db, pAux, argc, argv, ppVtab, pzErr);
  if( rc==SQLITE_OK ) ((AtomicConn*)pAux)->pCreatedTab = *ppVtab;
  return rc;
}

static int txnDisconnect(sqlite3_vtab *pVtab){
  AtomicTxnVtab *pTab = (AtomicTxnVtab*)pVtab;
  atomicConnUnref(pTab->p);
  sqlite3_free(pVtab->zErrMsg);
  sqlite3_free(pTab);
  return SQLITE_OK;
}

/*
** DROP TABLE temp.atomic_txn is refused while the table follows an open
** transaction: the extension would lose track of it.  SQLite ignores the
** message of xDestroy, so the DROP fails with its generic "SQL logic
** error"; none is set.
*/
static int txnDestroy(sqlite3_vtab *pVtab){
  AtomicTxnVtab *pTab = (AtomicTxnVtab*)pVtab;
  if( pTab->p->bJoined ) return SQLITE_ERROR;
  return txnDisconnect(pVtab);
}

static int txnBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  (void)pVtab;
  pInfo->estimatedCost = 1.0;
  pInfo->estimatedRows = 0;
  return SQLITE_OK;
}

static int txnOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor){
  AtomicTxnCursor *pCur = atomicMalloc(sizeof(*pCur));
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

static int txnEof(sqlite3_vtab_cursor *pCursor){
  (void)pCursor;
  return 1;
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
  if( !p->bJoined ){
    p->pJoinedTab = pVtab;
    atomicTxnJoined(p, 0);
  }
  return SQLITE_OK;
}

static int txnSync(sqlite3_vtab *pVtab){
  (void)pVtab;
  return SQLITE_OK;
}

/*
** The end of the transaction, committed (bCommit) or rolled back.  A test
** build can make the table miss it (atomic_test_deaf()), to test the
** entry points' own check (atomicSync).
*/
static int txnEnd(sqlite3_vtab *pVtab, int bCommit){
  AtomicConn *p = txnConnOf(pVtab);
  if( p==0 ) return SQLITE_OK;
#ifdef ATOMIC_TEST
  if( p->bTestDeaf ){
    p->bTestDeaf = 0;
    return SQLITE_OK;
  }
#endif
  atomicTxnEnd(p, bCommit ? ATM_END_COMMIT : ATM_END_ROLLBACK);
  return SQLITE_OK;
}

static int txnCommit(sqlite3_vtab *pVtab){
  return txnEnd(pVtab, 1);
}

static int txnRollback(sqlite3_vtab *pVtab){
  return txnEnd(pVtab, 0);
}

static int txnSavepoint(sqlite3_vtab *pVtab, int iLevel){
  AtomicConn *p = txnConnOf(pVtab);
  if( p==0 ) return SQLITE_OK;
#ifdef ATOMIC_TEST
  if( p->bProbing ){
    p->iProbe = iLevel;
    return SQLITE_OK;
  }
#endif
  return atomicLevelOpen(p, iLevel);
}

static int txnRelease(sqlite3_vtab *pVtab, int iLevel){
  AtomicConn *p = txnConnOf(pVtab);
  if( p==0 ) return SQLITE_OK;
#ifdef ATOMIC_TEST
  if( p->bProbing ){
    p->bProbeReleased = 1;
    return SQLITE_OK;
  }
#endif
  atomicLevelRelease(p, iLevel);
  return SQLITE_OK;
}

static int txnRollbackTo(sqlite3_vtab *pVtab, int iLevel){
  AtomicConn *p = txnConnOf(pVtab);
  if( p ) atomicLevelRollbackTo(p, iLevel);
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
  0,                        /* xNext, xColumn, xRowid: the table has no */
  txnEof,                   /*   rows, and SQLite calls them only on one */
  0,
  0,
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
** error, with its message in atomicErrmsg().
*/
static int txnCreateTable(AtomicConn *p){
  return atomicExecSql(p,
      "CREATE VIRTUAL TABLE IF NOT EXISTS temp.atomic_txn USING atomic_txn");
}

/*
** Register the atomic_txn module, and create temp.atomic_txn now if no
** transaction is open (in one, atomicJoin() creates it when needed).
** A failure to create the table is not an error here: atomicJoin() tries
** again.
*/
ATM_PRIVATE int atomicTxnRegister(sqlite3 *db, AtomicConn *p){
  int rc;
  atomicConnRef(p);
  rc = sqlite3_create_module_v2(db, "atomic_txn", &atomicTxnModule, p,
                                atomicConnUnref);
  if( rc==SQLITE_OK && sqlite3_get_autocommit(db) ) txnCreateTable(p);
  return rc;
}

/*
** Make temp.atomic_txn follow the open transaction and know its savepoint
** levels: run the join, creating the table if it is missing (never made,
** dropped, TEMP reset); if it joined blind, open and release a savepoint so
** that SQLite reports how many were open.  Returns SQLITE_OK, or an error
** with *pzErr set to the reason (NULL on OOM): PRAGMA query_only=1, an
** authorizer that denies or ignores the statements, an interrupt.
*/
ATM_PRIVATE int atomicJoin(AtomicConn *p, char **pzErr){
  int rc = SQLITE_OK;
  *pzErr = 0;
  assert( !sqlite3_get_autocommit(p->db) );
  if( !p->bJoined ){
    rc = atomicExec(p, ATM_STMT_JOIN);
    if( rc==SQLITE_ERROR && !p->bJoined && !sqlite3_get_autocommit(p->db) ){
      /* No such table, or its statement expired with it: make it.  Made
      ** inside the transaction, it is part of it (blind, see above) */
      sqlite3_finalize(p->apStmt[ATM_STMT_JOIN]);
      p->apStmt[ATM_STMT_JOIN] = 0;
      p->pCreatedTab = 0;
      rc = txnCreateTable(p);
      if( rc==SQLITE_OK && p->pCreatedTab
       && !sqlite3_get_autocommit(p->db)
      ){
        p->pJoinedTab = p->pCreatedTab;
        atomicTxnJoined(p, 1);
      }
      if( rc==SQLITE_OK && !p->bJoined ) rc = atomicExec(p, ATM_STMT_JOIN);
    }
    if( !p->bJoined ){
      if( rc==SQLITE_OK ){
        atomicDidNothing(p, "the INSERT INTO temp.atomic_txn that joins it "
                            "did nothing (an authorizer that ignores it?)");
        rc = SQLITE_ERROR;
      }
      /* An interrupted or failed INSERT inside a transaction makes SQLite
      ** roll back the whole transaction */
      *pzErr = atomicStepError(p);
      return rc;
    }
  }
  if( p->bBlind ){
    rc = atomicExec(p, ATM_STMT_SAVEPOINT);
    if( p->bJoined && !p->bBlind ){
      /* The levels are known now.  If the RELEASE fails the savepoint
      ** stays open, recorded as nobody's: the state is still true */
      rc = atomicExec(p, ATM_STMT_RELEASE);
      if( p->bJoined ) return SQLITE_OK;
      assert( rc!=SQLITE_OK );
    }else if( rc==SQLITE_OK ){
      atomicDidNothing(p, "SAVEPOINT did nothing (an authorizer that "
                          "ignores it?)");
      rc = SQLITE_ERROR;
    }
    /* It failed, did nothing, or made SQLite roll the transaction back
    ** (atomicStepError() says so) */
    *pzErr = atomicStepError(p);
  }
  return rc;
}

/*
** Open a savepoint owned by iOwner: the block savepoint (zSql NULL) or
** the statement zSql.  It opened if SQLite reported it, whatever the
** statement returned; then *piLevel is its level and SQLITE_OK is
** returned.  Otherwise an error, with its message in atomicErrmsg();
** SQLITE_BUSY means a statement that writes is running.
*/
ATM_PRIVATE int atomicSpOpen(AtomicConn *p, i64 iOwner, const char *zSql,
                             int *piLevel){
  int rc;
  p->iNewOwner = iOwner;
  rc = zSql ? atomicExecSql(p, zSql) : atomicExecHot(p, ATM_STMT_SAVEPOINT);
  p->iNewOwner = 0;
  if( p->nLevel>0 && p->aLevel[p->nLevel-1].iOwner==iOwner ){
    *piLevel = p->nLevel-1;
    return SQLITE_OK;
  }
  if( rc==SQLITE_OK ){
    atomicDidNothing(p, "SAVEPOINT did nothing (an authorizer that "
                        "ignores it?)");
    rc = SQLITE_ERROR;
  }
  return rc;
}

/*
** Run the ROLLBACK TO or RELEASE statement of the savepoint named zName,
** or of the block savepoint name if zName is NULL.
*/
static int txnSpExec(AtomicConn *p, int bRollback, const char *zName){
  char *zSql;
  int rc;
  if( zName==0 ){
    return atomicExec(p, bRollback ? ATM_STMT_ROLLBACKTO : ATM_STMT_RELEASE);
  }
  zSql = atomicMprintf("%s \"%w\"", bRollback ? "ROLLBACK TO" : "RELEASE",
                       zName);
  rc = atomicExecSql(p, zSql);
  sqlite3_free(zSql);
  return rc;
}

/*
** Run one RELEASE of the savepoint named zName (NULL: the block savepoint
** name).  Returns SQLITE_OK if SQLite reported that it released one,
** else an error with its message in atomicErrmsg().
*/
static int txnReleaseOnce(AtomicConn *p, const char *zName){
  int nBefore = p->nLevel;
  u32 nEnd = p->nEnd;
  int rc = txnSpExec(p, 0, zName);
  if( p->nEnd!=nEnd ){
    /* It failed, and SQLite rolled the transaction back */
    return rc ? rc : SQLITE_ERROR;
  }
  if( p->nLevel>=nBefore ){
    if( rc==SQLITE_OK ){
      atomicDidNothing(p, "RELEASE did nothing (an authorizer that ignores "
                          "it?)");
      rc = SQLITE_ERROR;
    }
    return rc;
  }
  return SQLITE_OK;
}

/*
** Roll back to the savepoint at level iLevel made by iOwner and named
** zName.  SQLite applies ROLLBACK TO to the innermost savepoint with the
** name: if raw SQL opened another one with the same name inside ours, that
** one is hit first; then it is released and ROLLBACK TO runs again, until
** it reaches ours.  Returns SQLITE_OK once SQLite reported the rollback to
** our level, whatever the statement returned; else an error with its
** message in atomicErrmsg().
*/
static int txnRollbackToLevel(AtomicConn *p, int iLevel, i64 iOwner,
                              const char *zName){
  (void)iOwner;
  for(;;){
    u32 nRollbackTo = p->nRollbackTo;
    u32 nEnd = p->nEnd;
    int rc = txnSpExec(p, 1, zName);
    if( p->nEnd!=nEnd ){
      /* It failed, and SQLite rolled the transaction back */
      return rc ? rc : SQLITE_ERROR;
    }
    if( p->nRollbackTo==nRollbackTo ){
      if( rc==SQLITE_OK ){
        atomicDidNothing(p, "ROLLBACK TO did nothing (an authorizer that "
                            "ignores it?)");
        rc = SQLITE_ERROR;
      }
      return rc;
    }
    /* ROLLBACK TO keeps the savepoint it reached, ours or one inside it */
    assert( atomicLevelAlive(p, iLevel, iOwner) );
    if( p->nLevel==iLevel+1 ) return SQLITE_OK;
    rc = txnReleaseOnce(p, zName);
    if( rc!=SQLITE_OK ) return rc;
  }
}

/*
** Roll back to (bRollback) and/or release (bRelease) the savepoint at
** level iLevel made by iOwner, whose name is zName, or the block
** savepoint name if zName is NULL.  A raw savepoint with the same name
** inside ours is released on the way, so the operation always reaches the
** savepoint it was meant for.  What happened is read from the levels
** SQLite reported, not from the return codes.  Returns SQLITE_OK when
** everything asked for happened; otherwise an error, with its message in
** atomicErrmsg().
*/
ATM_PRIVATE int atomicSpClose(AtomicConn *p, int iLevel, i64 iOwner,
                              int bRollback, int bRelease,
                              const char *zName){
  int rc = SQLITE_OK;
  assert( atomicLevelAlive(p, iLevel, iOwner) );
  if( bRollback ) rc = txnRollbackToLevel(p, iLevel, iOwner, zName);
  while( rc==SQLITE_OK && bRelease && atomicLevelAlive(p, iLevel, iOwner) ){
    rc = txnReleaseOnce(p, zName);
  }
  return rc;
}

/*
** End the transaction with the extension's own COMMIT (bCommit) or
** ROLLBACK, and return how it really ended: ATM_END_COMMIT,
** ATM_END_ROLLBACK (also a COMMIT that failed and made SQLite roll back),
** or ATM_END_NONE if it is still open.  *prc is the statement's result;
** if it is an error, *pzErr is a copy of its message (NULL on OOM), which
** the caller frees.  A statement that returned SQLITE_OK but left the
** transaction open (an authorizer ignored it) is reported as an error.
*/
ATM_PRIVATE int atomicEndTxn(AtomicConn *p, int bCommit, int *prc,
                             char **pzErr){
  u32 nEnd = p->nEnd;
  int eHow = ATM_END_NONE;
  int rc;
  p->bExpectEnd = 1;
  rc = atomicExec(p, bCommit ? ATM_STMT_COMMIT : ATM_STMT_ROLLBACK);
  if( p->nEnd!=nEnd ){
    eHow = p->eEnd;
  }else if( sqlite3_get_autocommit(p->db) ){
    /* Not followed, so not heard: the transaction ended anyway.  A COMMIT
    ** that ended it did commit unless it failed with an error that makes
    ** SQLite roll back (I/O, SQLITE_FULL, SQLITE_NOMEM); an interrupt
    ** (a progress handler's, after the work) does not */
    eHow = bCommit && (rc==SQLITE_OK || (rc&0xff)==SQLITE_INTERRUPT)
           ? ATM_END_COMMIT : ATM_END_ROLLBACK;
    atomicTxnEnd(p, eHow);
  }else if( rc==SQLITE_OK ){
    atomicDidNothing(p, bCommit
        ? "COMMIT did nothing (an authorizer that ignores it?)"
        : "ROLLBACK did nothing (an authorizer that ignores it?)");
    rc = SQLITE_ERROR;
  }
  p->bExpectEnd = 0;
  *prc = rc;
  *pzErr = rc==SQLITE_OK ? 0 : atomicMprintf("%s", atomicErrmsg(p));
  return eHow;
}
