/*
** floor.c -- the floor: the work of driver.c done as raw SQL by a C host
** with cached prepared statements, no extension loaded.
**
**   ./floor CASE N WARM
**
** CASE        one measured operation
** inner       SAVEPOINT s; RELEASE s                inside a transaction
** outer_mem   BEGIN; INSERT; COMMIT
** outer_wal   the same on a WAL file with synchronous=FULL
** callback    BEGIN; COMMIT; then INSERT INTO log VALUES(?1) in autocommit
** batch       one operation is a whole batch of N items in one BEGIN ..
**             COMMIT: each item SAVEPOINT s; INSERT; RELEASE s, every 10th
**             with ROLLBACK TO s before the RELEASE; the host keeps the
**             values of the kept items in an array and after the COMMIT
**             runs INSERT INTO log VALUES(?1) for each in autocommit
** deep        one operation is N x SAVEPOINT s then N x RELEASE s (the
**             same name at every level; the first begins the transaction)
**
** See common.h.
*/
#include "common.h"

static sqlite3_stmt *pBegin, *pCommit, *pSavepoint, *pRelease, *pRollbackTo;
static sqlite3_stmt *pInsert, *pLog;

static void inner(int n, int iBase){
  int i;
  (void)iBase;
  for(i=0; i<n; i++){
    run(pSavepoint);
    run(pRelease);
  }
}

static void outer(int n, int iBase){
  int i;
  for(i=0; i<n; i++){
    run(pBegin);
    run_i(pInsert, iBase+i);
    run(pCommit);
  }
}

static void callback(int n, int iBase){
  int i;
  for(i=0; i<n; i++){
    run(pBegin);
    run(pCommit);
    run_i(pLog, iBase+i);
  }
}

static sqlite3_int64 *aPending;   /* Callbacks of one batch, run after it */

static void batch(int n, int iBase){
  int i, nPending = 0;
  run(pBegin);
  for(i=0; i<n; i++){
    run(pSavepoint);
    run_i(pInsert, iBase+i);
    aPending[nPending++] = iBase+i;
    if( i%10==9 ){
      run(pRollbackTo);
      nPending--;
    }
    run(pRelease);
  }
  run(pCommit);
  for(i=0; i<nPending; i++) run_i(pLog, aPending[i]);
}

static void deep(int n, int iBase){
  int i;
  (void)iBase;
  for(i=0; i<n; i++) run(pSavepoint);
  for(i=0; i<n; i++) run(pRelease);
}

int main(int argc, char **argv){
  const char *zCase;
  int n, nWarm;
  if( argc!=4 ) usage(argv[0], "inner outer_mem outer_wal callback batch "
                      "deep");
  zCase = argv[1];
  n = atoi(argv[2]);
  nWarm = atoi(argv[3]);
  open_db(zCase, "floor");
  pBegin = prep("BEGIN");
  pCommit = prep("COMMIT");
  pSavepoint = prep("SAVEPOINT s");
  pRelease = prep("RELEASE s");
  pRollbackTo = prep("ROLLBACK TO s");
  pInsert = prep("INSERT INTO t VALUES(?1)");
  pLog = prep("INSERT INTO log VALUES(?1)");

  if( strcmp(zCase, "inner")==0 ){
    run(pBegin);
    measure(inner, n, nWarm);
    run(pCommit);
  }else if( strcmp(zCase, "outer_mem")==0 || strcmp(zCase, "outer_wal")==0 ){
    measure(outer, n, nWarm);
    expect_rows("t", nWarm+n);
  }else if( strcmp(zCase, "callback")==0 ){
    measure(callback, n, nWarm);
    expect_rows("log", nWarm+n);
  }else if( strcmp(zCase, "batch")==0 ){
    aPending = malloc(sizeof(*aPending)*(size_t)(n>nWarm ? n : nWarm));
    if( aPending==0 ) die("out of memory");
    measure(batch, n, nWarm);
    free(aPending);
    expect_rows("t", batch_kept(nWarm)+batch_kept(n));
    expect_rows("log", batch_kept(nWarm)+batch_kept(n));
  }else if( strcmp(zCase, "deep")==0 ){
    measure(deep, n, nWarm);
  }else{
    usage(argv[0], "inner outer_mem outer_wal callback batch deep");
  }
  if( !sqlite3_get_autocommit(db) ) die("a transaction was left open");
  close_db();
  printf("case=%s ops=%d ns=%lld\n", zCase, n, bench_ns());
  return 0;
}
