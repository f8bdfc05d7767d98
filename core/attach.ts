// Attaching from a forked worker (fds handed over by pm.fork / pm.clusterFork) or from
// a worker thread of an already attached process (a token from db.threadToken()).
import { Features, Ringmaster, ThreadToken } from './ringmaster';
import { RingmasterError, fromNative, typeError } from './errors';
import { RUN_STOPPED, native } from './native';
import { ATTACH_ENV } from './postmaster';

let forkedAttached = false;

export interface AttachOptions {
  /** Run watcher threads that reap completions in this process (default true). */
  reaper?: boolean;
  submitTimeoutMs?: number;
}

/**
 * In a worker started by `pm.fork()`/`pm.clusterFork()`: `attach()`.
 * In a worker thread: `attach(token)` with the token from `db.threadToken()`.
 */
export async function attach(token?: ThreadToken, options: AttachOptions = {}): Promise<Ringmaster> {
  if (options === null || typeof options !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'attach options must be an object');
  if (token !== undefined) return attachThread(token, options);
  const raw = process.env[ATTACH_ENV];
  if (!raw) {
    throw new RingmasterError('ERR_RINGMASTER_NOT_FORKED', `this process was not started by pm.fork() or pm.clusterFork() (no ${ATTACH_ENV} in its environment); worker threads pass a token: attach(db.threadToken())`);
  }
  if (forkedAttached) throw new RingmasterError('ERR_RINGMASTER_ALREADY_ATTACHED', 'this process is already attached; use the handle attach() returned');
  let spec: { v: number; memfd: number; ringFds: number[]; eventFds?: number[]; postmasterPid: number; features: Features; reaper: boolean };
  try {
    spec = JSON.parse(raw);
  } catch {
    throw new RingmasterError('ERR_RINGMASTER_ATTACH', `${ATTACH_ENV} is not valid JSON`);
  }
  if (spec?.v !== 1 || !Number.isInteger(spec.memfd) || !Array.isArray(spec.ringFds)) throw new RingmasterError('ERR_RINGMASTER_ATTACH', `${ATTACH_ENV} has an unknown format`);
  let session;
  try {
    session = native.attachForked(spec.memfd, spec.ringFds, { reaper: options.reaper ?? spec.reaper ?? true, eventFds: Array.isArray(spec.eventFds) ? spec.eventFds : [] });
  } catch (e) {
    throw fromNative(e);
  }
  forkedAttached = true;
  const { sameAddress: _ignored, ...features } = spec.features;
  const db = new Ringmaster(session, features, options.submitTimeoutMs);
  if (process.send) {
    const onMessage = (m: unknown) => {
      if (m && typeof m === 'object' && (m as { ringmaster?: string }).ringmaster === 'stop') db.emit('stop');
    };
    process.on('message', onMessage);
    const onDisconnect = () => {
      process.off('message', onMessage);
      let alive = true;
      try {
        process.kill(spec.postmasterPid, 0);
      } catch {
        alive = false;
      }
      if (!alive && !db.closed) {
        // The postmaster is gone: nobody will clean up or stop in order. Refuse new IO everywhere.
        try {
          db._native().setRunState(RUN_STOPPED);
        } catch {
          /* closed */
        }
        db.emit('postmaster-exit');
      }
    };
    process.once('disconnect', onDisconnect);
    // Our listeners must not keep the worker alive once it closed its handle.
    db.once('close', () => {
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
    });
  }
  return db;
}

function attachThread(token: ThreadToken, options: AttachOptions): Ringmaster {
  if (token === null || typeof token !== 'object' || typeof token.ringmasterSegment !== 'number' ||
      token.features === null || typeof token.features !== 'object') {
    throw typeError('ERR_INVALID_ARG_TYPE', 'attach(token): token must come from db.threadToken()');
  }
  let session;
  try {
    session = native.attachThread(token.ringmasterSegment);
  } catch (e) {
    throw fromNative(e);
  }
  const { sameAddress: _ignored, ...features } = token.features;
  return new Ringmaster(session, features, options.submitTimeoutMs);
}
