/*
** sqltrace.c -- a test helper, not part of the product: a loadable
** extension that sqld01.test puts beside atomic.so in sqld's extensions
** directory, so that the tests can see the exact SQL each server
** connection runs.
**
** When it loads on a connection, it numbers the connection (1, 2, ... in
** the order the process opens them) and appends one line per event to
** the file named by the environment variable ATOMIC_SQLTRACE:
**
**   c<N> OPEN                 the extension loaded on connection N
**   c<N> <sql>                a statement began (sqlite3_trace_v2's
**                             SQLITE_TRACE_STMT); a statement run from
**                             inside another one, such as the BEGIN that
**                             atomic_enter() runs, starts with "-- "
**   c<N> CLOSE                the connection is closing
**
** Newlines in SQL texts are written as spaces.  Without ATOMIC_SQLTRACE
** the extension does nothing.
**
**   gcc -fPIC -shared -o sqltrace.so sqltrace.c
**
** HOW IT WORKS: one sqlite3_trace_v2() callback per connection, with the
** connection's number as its context.  Each line is written with a single
** write() on a descriptor opened with O_APPEND, so lines of connections
** running on different threads do not mix.  The counter and descriptor
** are process-global: acceptable in a test helper, never in the product.
*/
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int traceFd = -1;        /* The trace file, opened at first load */
static int nConn = 0;           /* Connections numbered so far */

/*
** Append "c<iConn> <zText>\n" to the trace file, newlines in zText
** written as spaces.
*/
static void traceLine(int iConn, const char *zText){
  sqlite3_str *pStr = sqlite3_str_new(0);
  char *z;
  int i, n;
  sqlite3_str_appendf(pStr, "c%d %s\n", iConn, zText);
  n = sqlite3_str_length(pStr);
  z = sqlite3_str_finish(pStr);
  if( z==0 ) return;
  for(i=0; i<n-1; i++){
    if( z[i]=='\n' || z[i]=='\r' ) z[i] = ' ';
  }
  if( write(traceFd, z, n)!=n ){
    /* Nothing to do: a lost trace line shows up as a failing test */
  }
  sqlite3_free(z);
}

/*
** The sqlite3_trace_v2() callback.  pCtx carries the connection number.
*/
static int traceCallback(unsigned mType, void *pCtx, void *p, void *x){
  int iConn = (int)(intptr_t)pCtx;
  (void)p;
  if( mType==SQLITE_TRACE_STMT ){
    traceLine(iConn, (const char*)x);
  }else if( mType==SQLITE_TRACE_CLOSE ){
    traceLine(iConn, "CLOSE");
  }
  return 0;
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_sqltrace_init(
  sqlite3 *db,
  char **pzErrMsg,
  const sqlite3_api_routines *pApi
){
  const char *zPath;
  int iConn;
  (void)pzErrMsg;
  SQLITE_EXTENSION_INIT2(pApi);
  zPath = getenv("ATOMIC_SQLTRACE");
  if( zPath==0 || zPath[0]==0 ) return SQLITE_OK;
  if( traceFd<0 ){
    /* Connections may be opened on several threads at once */
    int fd = open(zPath, O_WRONLY|O_CREAT|O_APPEND, 0644);
    if( fd<0 ) return SQLITE_OK;
    if( !__sync_bool_compare_and_swap(&traceFd, -1, fd) ) close(fd);
  }
  iConn = __sync_add_and_fetch(&nConn, 1);
  sqlite3_trace_v2(db, SQLITE_TRACE_STMT|SQLITE_TRACE_CLOSE, traceCallback,
                   (void*)(intptr_t)iConn);
  traceLine(iConn, "OPEN");
  return SQLITE_OK;
}
