/*
** static_host.c -- the extension compiled into a program (-DSQLITE_CORE)
** and registered with sqlite3_auto_extension(), as N4 asks.  Every new
** connection then has the functions without loading anything.  Prints
** one line per check and exits non-zero if one fails.  Test-only.
**
**   static_host            the checks
**   static_host threads    N1 with threads: 4 threads with a connection
**                          each on one WAL file, then 2 threads sharing
**                          one connection (whole blocks under an
**                          application mutex) while a third reads the
**                          state through it
*/
#include <sqlite3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sqlite3_atomic_init(sqlite3*, char**, const sqlite3_api_routines*);

static int nFail = 0;

/* Run the statements of zSql; compare the first column of the last row
** any of them returned with zWant */
static void check(sqlite3 *db, const char *zSql, const char *zWant){
  const char *zTail = zSql;
  char zGot[200] = "";
  int rc = SQLITE_OK;
  while( rc==SQLITE_OK && zTail && zTail[0] ){
    sqlite3_stmt *pStmt = 0;
    rc = sqlite3_prepare_v2(db, zTail, -1, &pStmt, &zTail);
    while( rc==SQLITE_OK && pStmt && sqlite3_step(pStmt)==SQLITE_ROW ){
      const char *z = (const char*)sqlite3_column_text(pStmt, 0);
      snprintf(zGot, sizeof(zGot), "%s", z ? z : "NULL");
    }
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
  }
  if( rc!=SQLITE_OK ) snprintf(zGot, sizeof(zGot), "error: %s",
                               sqlite3_errmsg(db));
  printf("%s %s -> %s\n", strcmp(zGot, zWant)==0 ? "ok" : "FAIL", zSql, zGot);
  if( strcmp(zGot, zWant)!=0 ) nFail++;
}

/* Run SQL that returns one integer (or none: 0) */
static sqlite3_int64 one(sqlite3 *db, const char *zSql){
  sqlite3_stmt *pStmt = 0;
  sqlite3_int64 v = 0;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK
   && sqlite3_step(pStmt)==SQLITE_ROW
  ){
    v = sqlite3_column_int64(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return v;
}

#define N_ITER 300

typedef struct Worker Worker;
struct Worker {
  sqlite3 *db;              /* Connection to use */
  int iThread;              /* 1, 2, ... */
  pthread_mutex_t *pLock;   /* Whole blocks under this, if not NULL */
  int nKept;                /* Blocks that committed */
  int nErr;                 /* Unexpected errors */
};

/* Blocks with an INSERT and a callback each; every 7th rolls back */
static void *worker(void *pArg){
  Worker *w = (Worker*)pArg;
  int i;
  for(i=0; i<N_ITER; i++){
    char zSql[300];
    char *zErr = 0;
    int bKeep = i%7!=0;
    if( w->pLock ) pthread_mutex_lock(w->pLock);
    snprintf(zSql, sizeof(zSql),
        "SELECT atomic_enter();"
        "INSERT INTO t VALUES(%d, %d);"
        "SELECT on_commit('INSERT INTO log VALUES(?1)', %d);"
        "SELECT atomic_exit(%d);", w->iThread, i, w->iThread*100000+i, bKeep);
    if( sqlite3_exec(w->db, zSql, 0, 0, &zErr)!=SQLITE_OK ){
      fprintf(stderr, "thread %d: %s\n", w->iThread, zErr);
      w->nErr++;
    }else if( bKeep ){
      w->nKept++;
    }
    sqlite3_free(zErr);
    if( w->pLock ) pthread_mutex_unlock(w->pLock);
  }
  return 0;
}

/* Reads the state of a shared connection without the mutex, until told */
static int bStop = 0;        /* Set atomically by the main thread */
static void *reader(void *pArg){
  sqlite3 *db = (sqlite3*)pArg;
  long n = 0;
  while( !__atomic_load_n(&bStop, __ATOMIC_SEQ_CST) ){
    n += one(db, "SELECT atomic_depth() + get_autocommit() "
                 "+ (SELECT count(*) FROM atomic_pending)");
  }
  return (void*)n;
}

static int threads(void){
  sqlite3 *aDb[4];
  Worker aW[4];
  pthread_t aT[4];
  pthread_t tReader;
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  int i, nKept = 0;
  remove("threads.db"); remove("threads.db-wal"); remove("threads.db-shm");
  for(i=0; i<4; i++){
    sqlite3_open("threads.db", &aDb[i]);
    sqlite3_busy_timeout(aDb[i], 10000);
    sqlite3_exec(aDb[i], "PRAGMA journal_mode=WAL;"
        "SELECT atomic_config('transaction_mode', 'immediate');", 0, 0, 0);
  }
  sqlite3_exec(aDb[0], "CREATE TABLE t(thread, i); CREATE TABLE log(x);",
               0, 0, 0);
  /* 4 threads, a connection each */
  for(i=0; i<4; i++){
    memset(&aW[i], 0, sizeof(Worker));
    aW[i].db = aDb[i];
    aW[i].iThread = i+1;
    pthread_create(&aT[i], 0, worker, &aW[i]);
  }
  for(i=0; i<4; i++){
    pthread_join(aT[i], 0);
    nKept += aW[i].nKept;
    if( aW[i].nErr ) nFail++;
  }
  /* 2 threads sharing aDb[0], and a reader on it */
  pthread_create(&tReader, 0, reader, aDb[0]);
  for(i=0; i<2; i++){
    memset(&aW[i], 0, sizeof(Worker));
    aW[i].db = aDb[0];
    aW[i].iThread = 5+i;
    aW[i].pLock = &lock;
    pthread_create(&aT[i], 0, worker, &aW[i]);
  }
  for(i=0; i<2; i++){
    pthread_join(aT[i], 0);
    nKept += aW[i].nKept;
    if( aW[i].nErr ) nFail++;
  }
  __atomic_store_n(&bStop, 1, __ATOMIC_SEQ_CST);
  pthread_join(tReader, 0);
  {
    sqlite3_int64 nT = one(aDb[1], "SELECT count(*) FROM t");
    sqlite3_int64 nLog = one(aDb[1], "SELECT count(*) FROM log");
    sqlite3_int64 nMatch = one(aDb[1], "SELECT count(*) FROM t, log "
                                       "WHERE x = thread*100000 + i");
    int bOk = nT==nKept && nLog==nKept && nMatch==nKept;
    printf("%s %d blocks kept; rows %lld, callbacks run %lld, matching %lld\n",
           bOk ? "ok" : "FAIL", nKept, nT, nLog, nMatch);
    if( !bOk ) nFail++;
  }
  for(i=0; i<4; i++){
    int rc = sqlite3_close(aDb[i]);
    if( rc!=SQLITE_OK ){
      printf("FAIL sqlite3_close() -> %d\n", rc);
      nFail++;
    }
  }
  printf("%d failed\n", nFail);
  return nFail!=0;
}

int main(int argc, char **argv){
  sqlite3 *db = 0;
  int rc;
  sqlite3_auto_extension((void(*)(void))sqlite3_atomic_init);
  if( argc>1 && strcmp(argv[1], "threads")==0 ) return threads();
  sqlite3_open(":memory:", &db);
  check(db, "SELECT atomic_version()", "0.1.0");
  check(db, "CREATE TABLE t(a); CREATE TABLE log(x); SELECT 'ok'", "ok");
  check(db, "SELECT atomic_enter()", "1");
  check(db, "INSERT INTO t VALUES(1); SELECT on_commit("
            "'INSERT INTO log VALUES(?1)', 'after')", "1");
  check(db, "SELECT atomic_enter()", "2");
  check(db, "INSERT INTO t VALUES(2); SELECT atomic_exit(0)", "0");
  check(db, "SELECT atomic_exit()", "1");
  check(db, "SELECT group_concat(a) FROM t", "1");
  check(db, "SELECT group_concat(x) FROM log", "after");
  check(db, "SELECT atomic_enter()", "1");
  rc = sqlite3_close(db);
  printf("%s sqlite3_close() with a block open -> %d\n",
         rc==SQLITE_OK ? "ok" : "FAIL", rc);
  if( rc!=SQLITE_OK ) nFail++;
  printf("%d failed\n", nFail);
  return nFail!=0;
}
