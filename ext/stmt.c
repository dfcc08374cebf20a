/*
** stmt.c -- the statements the atomic extension runs itself: the ones it
** keeps prepared (BEGIN, COMMIT, SAVEPOINT, ...), one-off statements, and
** the step of every callback.  Every one of them goes through
** atomicStep(), so that a test build can make any of them fail.
**
** HOW IT WORKS
**
** A kept statement would make sqlite3_close() fail with SQLITE_BUSY, so
** the eponymous table atomic_close_guard is always connected before a
** statement is kept: sqlite3_close() disconnects virtual tables before it
** looks for unfinalized statements, and its xDisconnect finalizes them
** (pending.c).
**
** TEST BUILDS (-DATOMIC_TEST)
**
**   atomic_test_step(CODE, N [, MODE])
**                              the Nth statement the extension steps from
**                              now on fails with result code CODE; N=0
**                              disarms.  Returns the number of statements
**                              stepped since the previous call.
**
** SQLITE_INTERRUPT is made real: sqlite3_interrupt() is called before the
** step, and SQLite then fails that statement and every other one until
** the outermost statement ends, as a watchdog thread would.  Any other
** code fails the statement without running it, with the message
** "injected fault (CODE)"; with MODE 1, the open transaction is also
** rolled back, as SQLite does itself when a statement fails with an I/O
** error, SQLITE_FULL or SQLITE_NOMEM and has no statement journal; with
** MODE 2 the next statement fails too, and that one rolls back.  The
** countdown is process-wide, like atomic_test_oom(), so that it also
** reaches loading.
*/
#include "atomicInt.h"

#ifdef ATOMIC_TEST
static int stmtFaultCode = 0;        /* Result code of the fault */
static int stmtFaultCountdown = 0;   /* Fail when this reaches 0 from 1 */
static int stmtFaultSeen = 0;        /* Statements stepped since last call */
static int stmtFaultMode = 0;        /* 1: roll back; 2: twice, then so */

/*
** SQL function atomic_test_step(CODE, N).  Test builds only.
*/
ATM_PRIVATE void atomicTestStepFunc(sqlite3_context *ctx, int argc,
                                    sqlite3_value **argv){
    sqlite3_result_int(ctx, stmtFaultSeen);
  stmtFaultSeen = 0;
  stmtFaultCode = sqlite3_value_int(argv[0]);
  stmtFaultCountdown = sqlite3_value_int(argv[1]);
  stmtFaultMode = argc>2 ? sqlite3_value_int(argv[2]) : 0;
}
#endif

/*
** A statement begins (or fails to prepare): forget the previous one's
** explanations (atomicErrmsg()), and note whether a transaction is open
** (atomicStepEnded()).
*/
static void stmtClear(AtomicConn *p){
  p->zWhy = 0;
  p->bTxnAtStep = !sqlite3_get_autocommit(p->db);
#ifdef ATOMIC_TEST
  sqlite3_free(p->zFault);
  p->zFault = 0;
#endif
}

/*
** Get ready to step a statement.  In test builds, count the statement
** and, if its turn has come, inject the fault: returns the code to fail
** it with, or 0 to run it.
*/
static int stmtBegin(AtomicConn *p){
  stmtClear(p);
#ifdef ATOMIC_TEST
  stmtFaultSeen++;
  if( stmtFaultCountdown>0 && --stmtFaultCountdown==0 ){
    if( stmtFaultCode==SQLITE_INTERRUPT ){
      sqlite3_interrupt(p->db);
    }else{
      if( stmtFaultMode==2 ){
        /* This one fails; the next fails too, and rolls back */
        stmtFaultMode = 1;
        stmtFaultCountdown = 1;
      }else if( stmtFaultMode==1 && !sqlite3_get_autocommit(p->db) ){
        sqlite3_exec(p->db, "ROLLBACK", 0, 0, 0);
      }
      p->zFault = sqlite3_mprintf("injected fault (%s)",
                                  atomicCodeName(stmtFaultCode));
      return stmtFaultCode;
    }
  }
#endif
  return 0;
}

/*
** Run pStmt to completion (its rows, if any, are ignored) and reset it.
** Returns SQLITE_OK or the extended error code, with the message in
** atomicErrmsg(p).
*/
ATM_PRIVATE int atomicStep(AtomicConn *p, sqlite3_stmt *pStmt){
  int rc = stmtBegin(p);
  if( rc ) return rc;
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){}
  sqlite3_reset(pStmt);
  return rc==SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(p->db);
}

/*
** The message of the last statement atomicStep() ran: the extension's own
** explanation when the statement returned SQLITE_OK but did nothing, an
** injected fault's in test builds, or SQLite's.
*/
ATM_PRIVATE const char *atomicErrmsg(AtomicConn *p){
  if( p->zWhy ) return p->zWhy;
#ifdef ATOMIC_TEST
  if( p->zFault ) return p->zFault;
#endif
  return sqlite3_errmsg(p->db);
}

/*
** True if the transaction that was open when the last statement began is
** gone: the statement failed in a way that makes SQLite roll back the
** whole transaction (an interrupted or failed write, an I/O error,
** SQLITE_FULL or SQLITE_NOMEM without a statement journal).
*/
ATM_PRIVATE int atomicStepEnded(AtomicConn *p){
  return p->bTxnAtStep && sqlite3_get_autocommit(p->db);
}

/*
** A statement the extension ran returned SQLITE_OK but did nothing, which
** an application's authorizer does by answering SQLITE_IGNORE when the
** statement is prepared.  Set zWhy, the static text that explains it, as
** the statement's message, and forget the kept statements: SQLite expires
** statements when an authorizer is set but not when it is removed, so
** they would go on doing nothing.
*/
ATM_PRIVATE void atomicDidNothing(AtomicConn *p, const char *zWhy){
  int i;
  for(i=0; i<ATM_N_STMT; i++){
    sqlite3_finalize(p->apStmt[i]);
    p->apStmt[i] = 0;
  }
  p->zWhy = zWhy;
}

/*
** Make sure atomic_close_guard (pending.c) is connected, so that kept
** statements are finalized by sqlite3_close().  Returns SQLITE_OK, or an
** error if the table cannot be connected (then nothing may be kept).
*/
ATM_PRIVATE int atomicGuard(AtomicConn *p){
  if( p->bGuard==0 ){
    sqlite3_stmt *pStmt = 0;
    int rc = sqlite3_prepare_v2(p->db,
                                "SELECT 0 FROM main.atomic_close_guard",
                                -1, &pStmt, 0);
    sqlite3_finalize(pStmt);
    if( rc!=SQLITE_OK ) return rc;
    assert( p->bGuard>0 );
  }
  return SQLITE_OK;
}

/*
** Finalize every statement the state keeps.  Called by atomic_close_guard's
** xDisconnect during sqlite3_close(), and harmless at any other time: the
** statements are prepared again when next needed.
*/
ATM_PRIVATE void atomicFinalizeAll(AtomicConn *p){
  int i;
  for(i=0; i<ATM_N_STMT; i++){
    sqlite3_finalize(p->apStmt[i]);
    p->apStmt[i] = 0;
  }
  atomicSqlFinalize(p);
}

/*
** Prepare kept statement iStmt.  Returns SQLITE_OK or an error code.
*/
static int stmtPrepare(AtomicConn *p, int iStmt){
  static const char *const azMode[] = {
    "BEGIN DEFERRED", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"
  };
  char zBuf[64];
  const char *zSql = zBuf;
  int rc = atomicGuard(p);
  if( rc!=SQLITE_OK ) return rc;
  switch( iStmt ){
    case ATM_STMT_BEGIN:    zSql = azMode[p->eMode];  break;
    case ATM_STMT_COMMIT:   zSql = "COMMIT";          break;
    case ATM_STMT_ROLLBACK: zSql = "ROLLBACK";        break;
    case ATM_STMT_SAVEPOINT:
      sqlite3_snprintf(sizeof(zBuf), zBuf, "SAVEPOINT %s", p->zSpName);
      break;
    case ATM_STMT_RELEASE:
      sqlite3_snprintf(sizeof(zBuf), zBuf, "RELEASE %s", p->zSpName);
      break;
    case ATM_STMT_ROLLBACKTO:
      sqlite3_snprintf(sizeof(zBuf), zBuf, "ROLLBACK TO %s", p->zSpName);
      break;
    case ATM_STMT_JOIN:
      zSql = "INSERT OR IGNORE INTO temp.atomic_txn VALUES(0)";
      break;
    default:
      assert( iStmt==ATM_STMT_SCHEMA );
      zSql = "PRAGMA main.schema_version";
      break;
  }
  return sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT,
                            &p->apStmt[iStmt], 0);
}

/*
** atomicExec() (atomicInt.h) of a statement not prepared yet, and of every
** statement in the test build.
*/
ATM_PRIVATE int atomicExecFull(AtomicConn *p, int iStmt){
  if( p->apStmt[iStmt]==0 ){
    int rc = stmtPrepare(p, iStmt);
    if( rc!=SQLITE_OK ){
      stmtClear(p);
      return sqlite3_extended_errcode(p->db);
    }
  }
  return atomicStep(p, p->apStmt[iStmt]);
}

/*
** Read main's schema_version into *piVersion.  Returns SQLITE_OK or an
** error code.
*/
ATM_PRIVATE int atomicSchemaVersion(AtomicConn *p, int *piVersion){
  sqlite3_stmt *pStmt;
  int rc;
  if( p->apStmt[ATM_STMT_SCHEMA]==0 ){
    rc = stmtPrepare(p, ATM_STMT_SCHEMA);
    if( rc!=SQLITE_OK ){
      stmtClear(p);
      return sqlite3_extended_errcode(p->db);
    }
  }
  pStmt = p->apStmt[ATM_STMT_SCHEMA];
  rc = stmtBegin(p);
  if( rc ) return rc;
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    *piVersion = sqlite3_column_int(pStmt, 0);
  }
  rc = sqlite3_reset(pStmt);
  return rc==SQLITE_OK ? rc : sqlite3_extended_errcode(p->db);
}

/*
** Prepare, run and finalize one statement.  Returns SQLITE_OK or the
** extended error code, with the message in atomicErrmsg(p).  zSql may be
** NULL (the result of a failed atomicMprintf()): SQLITE_NOMEM.
*/
ATM_PRIVATE int atomicExecSql(AtomicConn *p, const char *zSql){
  sqlite3_stmt *pStmt = 0;
  int rc;
  stmtClear(p);
  if( zSql==0 ){
    p->zWhy = "out of memory";
    return SQLITE_NOMEM;
  }
  rc = sqlite3_prepare_v2(p->db, zSql, -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return sqlite3_extended_errcode(p->db);
  rc = atomicStep(p, pStmt);
  sqlite3_finalize(pStmt);
  return rc;
}

/*
** Whether a statement that writes is running on the connection:
**
**   0  none
**   1  one is executing, so the calling function is part of it (a
**      trigger, INSERT ... SELECT f()) or called by something that is
**   2  one is paused with rows still to read (INSERT ... RETURNING whose
**      cursor was not run to its end), and none is executing
**
** A statement that is executing has no result row in hand (SQLite clears
** it each time a step begins), so sqlite3_data_count() tells the two
** apart.  With no write transaction open no statement can be writing.
*/
ATM_PRIVATE int atomicWriterActive(AtomicConn *p){
  sqlite3_stmt *pStmt = 0;
  int eWriter = 0;
  if( sqlite3_get_autocommit(p->db)
   && sqlite3_txn_state(p->db, 0)!=SQLITE_TXN_WRITE
  ){
    return 0;
  }
  while( (pStmt = sqlite3_next_stmt(p->db, pStmt))!=0 ){
    if( sqlite3_stmt_busy(pStmt) && !sqlite3_stmt_readonly(pStmt) ){
      if( sqlite3_data_count(pStmt)==0 ) return 1;
      eWriter = 2;
    }
  }
  return eWriter;
}
