/*
** static_host.c -- the extension compiled into a program (-DSQLITE_CORE)
** and registered with sqlite3_auto_extension(), as N4 asks.  Every new
** connection then has the functions without loading anything.  Prints
** one line per check and exits non-zero if one fails.  Test-only.
*/
#include <sqlite3.h>
#include <stdio.h>
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

int main(void){
  sqlite3 *db = 0;
  int rc;
  sqlite3_auto_extension((void(*)(void))sqlite3_atomic_init);
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
