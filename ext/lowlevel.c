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
** queued, and the error keeps its result code.
*/
#include "atomicInt.h"

/*
** get_autocommit()
*/
void atomicGetAutocommitFunc(sqlite3_context *ctx, int argc,
                             sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  (void)argc; (void)argv;
  sqlite3_result_int(ctx, sqlite3_get_autocommit(p->db)!=0);
}

/*
** Run the ready callbacks and set the result of ctx: the integer 1 if
** bOne, else NULL, if they all succeeded (or were robust); otherwise the
** failure.
*/
static void atomic_run_ready_result(sqlite3_context *ctx, AtomicConn *p,
                                    int bOne){
  char *zErr = 0;
  int rc = atomic_queue_run_ready(p, &zErr);
  if( rc!=SQLITE_OK ){
    atomic_error(ctx, rc, "%s", zErr ? zErr : "on_commit callback failed "
                 "after commit: out of memory");
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
void atomicSetAutocommitFunc(sqlite3_context *ctx, int argc,
                             sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  int bFlag = 0;
  int rc;
  (void)argc;
  if( atomic_arg_bool(ctx, "set_autocommit", "flag", argv[0], &bFlag) ){
    return;
  }
  if( atomic_check(p, ctx, "set_autocommit",
                   ATOMIC_CHECK_WRITER|ATOMIC_CHECK_FORBID) ){
    return;
  }
  if( bFlag==0 ){
    if( sqlite3_get_autocommit(p->db) ){
      rc = atomic_exec(p, ATOMIC_STMT_BEGIN);
      if( rc!=SQLITE_OK ){
        atomic_error_db(ctx, p, rc, "set_autocommit");
        return;
      }
    }
    sqlite3_result_int(ctx, 0);
    return;
  }
  if( !sqlite3_get_autocommit(p->db) ){
    atomic_error(ctx, SQLITE_ERROR, "set_autocommit(): a transaction is "
        "open; end it with atomic_commit() or atomic_rollback() first");
    return;
  }
  atomic_run_ready_result(ctx, p, 1);
}

/*
** atomic_commit()
*/
void atomicCommitFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  char *zErr = 0;
  int rc;
  (void)argc; (void)argv;
  if( atomic_check(p, ctx, "atomic_commit",
        ATOMIC_CHECK_WRITER|ATOMIC_CHECK_FORBID|ATOMIC_CHECK_BROKEN) ){
    return;
  }
  if( sqlite3_get_autocommit(p->db) ){
    sqlite3_result_null(ctx);
    return;
  }
  rc = atomic_end_txn(p, 1, &zErr);
  if( rc!=SQLITE_OK ){
    atomic_error(ctx, rc, "atomic_commit(): %s",
                 zErr ? zErr : "out of memory");
    sqlite3_free(zErr);
    return;
  }
  atomic_run_ready_result(ctx, p, 0);
}

/*
** atomic_rollback()
*/
void atomicRollbackFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  char *zErr = 0;
  int rc;
  (void)argc; (void)argv;
  if( atomic_check(p, ctx, "atomic_rollback",
                   ATOMIC_CHECK_WRITER|ATOMIC_CHECK_FORBID) ){
    return;
  }
  p->bRollback = p->bBroken = 0;
  if( !sqlite3_get_autocommit(p->db) ){
    rc = atomic_end_txn(p, 0, &zErr);
    if( rc!=SQLITE_OK ){
      atomic_error(ctx, rc, "atomic_rollback(): %s",
                   zErr ? zErr : "out of memory");
      sqlite3_free(zErr);
      return;
    }
  }
  sqlite3_result_null(ctx);
}
