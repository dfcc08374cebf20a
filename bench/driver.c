/*
** driver.c -- the atomic extension under benchmark: every case issues the
** extension's SQL functions through cached prepared statements, as an
** application would.  floor.c does the same work as raw SQL.
**
**   ./driver CASE N WARM
**
** CASE        one measured operation
** inner       SELECT atomic_enter(); SELECT atomic_exit()   inside a block
** outer_mem   SELECT atomic_enter(); INSERT; SELECT atomic_exit()
** outer_wal   the same on a WAL file with synchronous=FULL
** callback    SELECT atomic_enter();
**             SELECT on_commit('INSERT INTO log VALUES(?1)', ?1);
**             SELECT atomic_exit()              -- the INSERT runs here
** batch       one operation is a whole batch of N items in one block:
**             each item an inner block with one INSERT and one on_commit(),
**             every 10th leaving with atomic_exit(0)
** deep        one operation is N nested atomic_enter() then N atomic_exit()
** memory      N on_commit() queued in one block; prints bytes= as well
** discard...  with WARM callbacks queued in an outer block, one operation
**             is an inner block that queues one callback and rolls back:
**             the cost of discarding k=1 callback, whatever else is queued
**             (cases discard10 and discard1000000)
**
** WARM operations (for batch and deep: one operation of WARM items or
** levels) run before the measured phase.  See common.h.
*/
#include "common.h"

static sqlite3_stmt *pEnter, *pExit, *pExitFail, *pInsert, *pOnCommit;

static void load_extension(void){
  char *zErr = 0;
  const char *zSo = getenv("ATOMIC_SO");
  if( zSo==0 ) zSo = "../atomic.so";
  sqlite3_enable_load_extension(db, 1);
  if( sqlite3_load_extension(db, zSo, 0, &zErr)!=SQLITE_OK ){
    fprintf(stderr, "bench: cannot load %s: %s\n", zSo, zErr);
    exit(1);
  }
}

static void inner(int n, int iBase){
  int i;
  (void)iBase;
  for(i=0; i<n; i++){
    run(pEnter);
    run(pExit);
  }
}

static void outer(int n, int iBase){
  int i;
  for(i=0; i<n; i++){
    run(pEnter);
    run_i(pInsert, iBase+i);
    run(pExit);
  }
}

static void callback(int n, int iBase){
  int i;
  for(i=0; i<n; i++){
    run(pEnter);
    run_i(pOnCommit, iBase+i);
    run(pExit);
  }
}

static void batch(int n, int iBase){
  int i;
  run(pEnter);
  for(i=0; i<n; i++){
    run(pEnter);
    run_i(pInsert, iBase+i);
    run_i(pOnCommit, iBase+i);
    run(i%10==9 ? pExitFail : pExit);
  }
  run(pExit);
}

static void deep(int n, int iBase){
  int i;
  (void)iBase;
  for(i=0; i<n; i++) run(pEnter);
  for(i=0; i<n; i++) run(pExit);
}

int main(int argc, char **argv){
  const char *zCase;
  int n, nWarm;
  long long nByte = -1;
  if( argc!=4 ) usage(argv[0], "inner outer_mem outer_wal callback batch "
                      "deep memory");
  zCase = argv[1];
  n = atoi(argv[2]);
  nWarm = atoi(argv[3]);
  open_db(zCase, "ours");
  load_extension();
  pEnter = prep("SELECT atomic_enter()");
  pExit = prep("SELECT atomic_exit()");
  pExitFail = prep("SELECT atomic_exit(0)");
  pInsert = prep("INSERT INTO t VALUES(?1)");
  pOnCommit = prep("SELECT on_commit('INSERT INTO log VALUES(?1)', ?1)");

  if( strcmp(zCase, "inner")==0 ){
    run(pEnter);
    measure(inner, n, nWarm);
    run(pExit);
  }else if( strcmp(zCase, "outer_mem")==0 || strcmp(zCase, "outer_wal")==0 ){
    measure(outer, n, nWarm);
    expect_rows("t", nWarm+n);
  }else if( strcmp(zCase, "callback")==0 ){
    measure(callback, n, nWarm);
    expect_rows("log", nWarm+n);
  }else if( strcmp(zCase, "batch")==0 ){
    measure(batch, n, nWarm);
    expect_rows("t", batch_kept(nWarm)+batch_kept(n));
    expect_rows("log", batch_kept(nWarm)+batch_kept(n));
  }else if( strcmp(zCase, "deep")==0 ){
    measure(deep, n, nWarm);
  }else if( strcmp(zCase, "memory")==0 ){
    int i;
    sqlite3_int64 nBefore;
    run(pEnter);
    for(i=0; i<nWarm; i++) run_i(pOnCommit, -1-i);
    nBefore = sqlite3_memory_used();
    bench_start();
    for(i=0; i<n; i++) run_i(pOnCommit, i);
    bench_stop();
    nByte = sqlite3_memory_used() - nBefore;
    run(pExitFail);               /* Discard them all */
    expect_rows("log", 0);
  }else if( strncmp(zCase, "discard", 7)==0 ){
    int i;
    run(pEnter);
    for(i=0; i<nWarm; i++) run_i(pOnCommit, -1-i);
    bench_start();
    for(i=0; i<n; i++){
      run(pEnter);
      run_i(pOnCommit, i);
      run(pExitFail);
    }
    bench_stop();
    run(pExitFail);
    expect_rows("log", 0);
  }else{
    usage(argv[0], "inner outer_mem outer_wal callback batch deep memory "
                   "discard10 discard1000000");
  }
  if( !sqlite3_get_autocommit(db) ) die("a transaction was left open");
  close_db();
  printf("case=%s ops=%d ns=%lld", zCase, n, bench_ns());
  if( nByte>=0 ) printf(" bytes=%lld", nByte);
  printf("\n");
  return 0;
}
