// SPDX-License-Identifier: MIT
// Types of sqlite-atomic.  A database is any object with prepare(),
// exec() and loadExtension(): libsql, better-sqlite3 or node:sqlite.

export interface Database {
  prepare(sql: string): any;
  exec(sql: string): any;
  loadExtension(path: string, ...rest: any[]): any;
}

export interface Block {
  /** undefined while open; then true if kept, false if rolled back */
  kept: boolean | undefined;
}

export interface AtomicOptions {
  savepoint?: boolean;
  durable?: boolean;
}

export interface Pending {
  seq: number;
  sql: string;
  args: unknown[];
  depth: number;
  robust: boolean;
  durable: boolean;
  fn: (() => unknown) | null;
}

export function getLoadablePath(): string;
export function load(db: Database): void;
export function atomic<T>(db: Database, fn: (block: Block) => T,
                          options?: AtomicOptions): T;
export function onCommit(db: Database, fn: () => unknown,
                         options?: { robust?: boolean }): void;
export function runCallbacks(db: Database): void;
export function setRollback(db: Database, rollback: boolean): void;
export function getRollback(db: Database): boolean;
export function savepoint(db: Database): string | null;
export function savepointCommit(db: Database, sid: string | null): void;
export function savepointRollback(db: Database, sid: string | null): void;
export function cleanSavepoints(db: Database): void;
export function getAutocommit(db: Database): boolean;
export function setAutocommit(db: Database, autocommit: boolean): void;
export function commit(db: Database): void;
export function rollback(db: Database): void;
export function depth(db: Database): number;
export function pending(db: Database): Pending[];
export function setRobustErrorHandler(
  handler: (message: string, error: unknown) => void
): (message: string, error: unknown) => void;
