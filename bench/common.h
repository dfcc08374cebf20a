/*
** common.h -- the harness shared by the two benchmark drivers:
**
**   driver.c   the atomic extension, through its SQL functions
**   floor.c    the same work as raw SQL from a C host (the floor)
**
** Both are run as
**
**   ./driver CASE N WARM        ./floor CASE N WARM
**
** and print one line "case=CASE ops=N ns=T [bytes=B]" where T is the wall
** time of the measured phase.  Only the measured phase is counted by
** callgrind: run.py starts the drivers with --instr-atstart=no, and
** bench_start()/bench_stop() switch instrumentation on and off around that
** phase (callgrind's "totals:" then counts just that phase), so
** opening the database, loading the extension, CREATE TABLE, preparing
** statements and the warm-up are all excluded.  Outside valgrind the
** client requests cost a few instructions and do nothing.
**
** Environment: ATOMIC_SO (default ../atomic.so), BENCH_OUT (default out),
** the folder of the WAL database files.
*/
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

static sqlite3 *db;
static struct timespec tStart, tStop;
static int bMeasuring = 0;
static char zDbPath[512];     /* A database file to remove at the end */

static void die(const char *zWhat){
  fprintf(stderr, "bench: %s: %s\n", zWhat, db ? sqlite3_errmsg(db) : "?");
  exit(1);
}

static void bench_start(void){
  if( bMeasuring ) die("bench_start twice");
  bMeasuring = 1;
  clock_gettime(CLOCK_MONOTONIC, &tStart);
  CALLGRIND_START_INSTRUMENTATION;
}

static void bench_stop(void){
  CALLGRIND_STOP_INSTRUMENTATION;
  clock_gettime(CLOCK_MONOTONIC, &tStop);
  if( !bMeasuring ) die("bench_stop without bench_start");
  bMeasuring = 0;
}

/*
** The shape of most cases: x(nWarm, -nWarm) as the warm-up (negative
** values, so that its rows do not meet the measured ones), then x(n, 0) as
** the measured phase.
*/
static void measure(void (*x)(int nOp, int iBase), int n, int nWarm){
  x(nWarm, -nWarm);
  bench_start();
  x(n, 0);
  bench_stop();
}

static long long bench_ns(void){
  return (long long)(tStop.tv_sec - tStart.tv_sec)*1000000000LL
       + (tStop.tv_nsec - tStart.tv_nsec);
}

/* The driver's own cached statements, finalized by close_db() */
static sqlite3_stmt *apStmt[16];
static int nStmt = 0;

static sqlite3_stmt *prep(const char *zSql){
  sqlite3_stmt *p = 0;
  if( sqlite3_prepare_v3(db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &p, 0)
      !=SQLITE_OK ){
    die(zSql);
  }
  if( nStmt>=(int)(sizeof(apStmt)/sizeof(apStmt[0])) ) die("too many stmts");
  apStmt[nStmt++] = p;
  return p;
}

/* Step a statement once (a row or done), then reset it */
static void run(sqlite3_stmt *p){
  int rc = sqlite3_step(p);
  if( rc!=SQLITE_ROW && rc!=SQLITE_DONE ) die(sqlite3_sql(p));
  if( sqlite3_reset(p)!=SQLITE_OK ) die(sqlite3_sql(p));
}

/* Bind an integer to ?1, then run() */
static void run_i(sqlite3_stmt *p, sqlite3_int64 i){
  sqlite3_bind_int64(p, 1, i);
  run(p);
}

static void exec(const char *zSql){
  char *zErr = 0;
  if( sqlite3_exec(db, zSql, 0, 0, &zErr)!=SQLITE_OK ){
    fprintf(stderr, "bench: %s: %s\n", zSql, zErr);
    exit(1);
  }
}

/*
** Open the database of a case: in-memory, or a fresh WAL file with
** synchronous=FULL for the cases whose name ends in "_wal".
*/
static void open_db(const char *zCase, const char *zWho){
  int rc;
  if( strlen(zCase)>4 && strcmp(zCase+strlen(zCase)-4, "_wal")==0 ){
    char zPath[512];
    const char *zDir = getenv("BENCH_OUT");
    if( zDir==0 ) zDir = "out";
    snprintf(zPath, sizeof(zPath), "%s/%s-%s-%d.db", zDir, zCase, zWho,
             (int)getpid());
    unlink(zPath);
    rc = sqlite3_open(zPath, &db);
    if( rc!=SQLITE_OK ) die(zPath);
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    snprintf(zDbPath, sizeof(zDbPath), "%s", zPath);
  }else{
    rc = sqlite3_open(":memory:", &db);
    if( rc!=SQLITE_OK ) die(":memory:");
  }
  exec("CREATE TABLE t(x); CREATE TABLE log(x);");
}

/* Close the database and remove its files */
static void close_db(void){
  while( nStmt>0 ) sqlite3_finalize(apStmt[--nStmt]);
  if( sqlite3_close(db)!=SQLITE_OK ) die("sqlite3_close");
  db = 0;
  if( zDbPath[0] ){
    char zAux[600];
    unlink(zDbPath);
    snprintf(zAux, sizeof(zAux), "%s-wal", zDbPath); unlink(zAux);
    snprintf(zAux, sizeof(zAux), "%s-shm", zDbPath); unlink(zAux);
  }
}

/*
** Check that the work was done: SELECT count(*) FROM zTable is nExpect.
*/
static void expect_rows(const char *zTable, sqlite3_int64 nExpect){
  sqlite3_stmt *p = 0;
  char zSql[100];
  sqlite3_int64 n = -1;
  snprintf(zSql, sizeof(zSql), "SELECT count(*) FROM %s", zTable);
  if( sqlite3_prepare_v2(db, zSql, -1, &p, 0)!=SQLITE_OK ) die(zSql);
  if( sqlite3_step(p)==SQLITE_ROW ) n = sqlite3_column_int64(p, 0);
  sqlite3_finalize(p);
  if( n!=nExpect ){
    fprintf(stderr, "bench: %s holds %lld rows, expected %lld\n", zTable,
            (long long)n, (long long)nExpect);
    exit(1);
  }
}

/* Items a batch of n keeps: all but every 10th */
static sqlite3_int64 batch_kept(int n){ return n - n/10; }

static void usage(const char *zArgv0, const char *zCases){
  fprintf(stderr, "usage: %s CASE N WARM\n  CASE: %s\n", zArgv0, zCases);
  exit(2);
}

#endif /* BENCH_COMMON_H */
