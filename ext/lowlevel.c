/*
** lowlevel.c -- autocommit, commit and rollback by hand: the part of
** Django's API below atomic blocks.
**
**   get_autocommit()       -> 1 if no transaction is open, else 0
**   set_autocommit(FLAG)   -> FLAG as 0 or 1.  0 begins a transaction
**                             (BEGIN <transaction_mode>) if none is open;
**                             1 is an error while one is open, and
**                             otherwise runs callbacks whose work already
**                             committed (C9)
**   atomic_commit()        -> NULL; COMMIT, then run the callbacks (C9).
**                             With no transaction open: nothing (P2)
**   atomic_rollback()      -> NULL; ROLLBACK if a transaction is open, and
**                             clear the rollback flag (L3)
**
** Inside an atomic block, or while orphaned blocks remain, all but
** get_autocommit() refuse with Django's "This is forbidden when an
** 'atomic' block is active." (L1, P3).  atomic_commit() also refuses while
** a failed savepoint-less block left the transaction broken (F3).  If
** COMMIT fails the transaction stays as SQLite left it (open after a
** deferred foreign key violation or SQLITE_BUSY), the callbacks stay
** queued, and the error keeps its result code.  A transaction that the
** extension could not roll back earlier (DOOMED) is rolled back first by
** set_autocommit() and atomic_commit(), and is what atomic_rollback()
** ends.
*/
#include "atomicInt.h"

/*
** get_autocommit()
*/
ATM_PRIVATE void atomicGetAutocommitFunc(sqlite3_context *ctx, int argc,
                                         sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  (void)argc; (void)argv;
  sqlite3_result_int(ctx, sqlite3_get_autocommit(p->db)!=0);
}

/*
** Run the ready callbacks and set the result of ctx: the integer 1 if
** bOne, else NULL, if they all succeeded (or were robust); otherwise the
** failure, with SQLITE_ERROR (the work they follow is committed).
*/
static void lowRunReady(sqlite3_context *ctx, AtomicConn *p, int bOne){
  char *zErr = 0;
  if( atomicRunReady(p, &zErr)!=SQLITE_OK ){
    sqlite3_result_error(ctx, zErr ? zErr : "on_commit callback failed "
        "after commit (no memory for the message); the transaction was "
        "committed", -1);
    sqlite3_result_error_code(ctx, SQLITE_ERROR);
  }else if( bOne ){
    sqlite3_result_int(ctx, 1);
  }else{
    sqlite3_result_null(ctx);
  }
  sqlite3_free(zErr);
}

/*
** set_autocommit(flag)
*/
ATM_PRIVATE void atomicSetAutocommitFunc(sqlite3_context *ctx, int argc,
                                         sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  int bFlag = 0;
  int rc;
  (void)argc;
  if( atomicArgBool(ctx, "set_autocommit", "flag", argv[0], &bFlag) ){
    return;
  }
  if( atomicCheck(p, ctx, "set_autocommit",
                  ATM_CHECK_WRITER|ATM_CHECK_FORBID|ATM_CHECK_DOOMED) ){
    return;
  }
  if( bFlag==0 ){
    if( sqlite3_get_autocommit(p->db) ){
      rc = atomicExec(p, ATM_STMT_BEGIN);
      if( sqlite3_get_autocommit(p->db) ){
        if( rc==SQLITE_OK ){
          atomicDidNothing(p, "BEGIN did nothing (an authorizer that "
                              "ignores it?)");
          rc = SQLITE_ERROR;
        }
        atomicErrorDb(ctx, p, rc, "set_autocommit");
        return;
      }
    }
    sqlite3_result_int(ctx, 0);
    return;
  }
  if( !sqlite3_get_autocommit(p->db) ){
    atomicError(ctx, SQLITE_ERROR, "set_autocommit(): a transaction is "
        "open; end it with atomic_commit() or atomic_rollback() first");
    return;
  }
  lowRunReady(ctx, p, 1);
}

/*
** atomic_commit()
*/
ATM_PRIVATE void atomicCommitFunc(sqlite3_context *ctx, int argc,
                                  sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  char *zErr = 0;
  int eHow;
  int rc;
  (void)argc; (void)argv;
  if( atomicCheck(p, ctx, "atomic_commit", ATM_CHECK_WRITER|ATM_CHECK_FORBID
                  |ATM_CHECK_BROKEN|ATM_CHECK_DOOMED) ){
    return;
  }
  if( sqlite3_get_autocommit(p->db) ){
    sqlite3_result_null(ctx);
    return;
  }
  eHow = atomicEndTxn(p, 1, &rc, &zErr);
  if( eHow==ATM_END_COMMIT ){
    sqlite3_free(zErr);
    lowRunReady(ctx, p, 0);
    return;
  }
  atomicError(ctx, rc, "atomic_commit(): %s%s", eHow==ATM_END_NONE ? ""
              : "COMMIT failed, so the transaction was rolled back: ",
              atomicOom(zErr));
  sqlite3_free(zErr);
}

/*
** atomic_rollback()
*/
ATM_PRIVATE void atomicRollbackFunc(sqlite3_context *ctx, int argc,
                                    sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  char *zErr = 0;
  int rc;
  (void)argc; (void)argv;
  if( atomicCheck(p, ctx, "atomic_rollback",
                  ATM_CHECK_WRITER|ATM_CHECK_FORBID) ){
    return;
  }
  if( !sqlite3_get_autocommit(p->db)
   && atomicEndTxn(p, 0, &rc, &zErr)==ATM_END_NONE
  ){
    atomicError(ctx, rc, "atomic_rollback(): %s; the transaction is still "
                "open", atomicOom(zErr));
    sqlite3_free(zErr);
    return;
  }
  sqlite3_free(zErr);
  atomicFlagSet(p, 0, 0);
  sqlite3_result_null(ctx);
}
