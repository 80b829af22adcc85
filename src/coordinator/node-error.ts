// Why a responder could not be asked, as data: the kind of a control-channel error (nothing branches on its words).
import type { NodeErrorKind } from '../types.js';
import { ControlError } from './client.js';

const BY_ERRNO: Readonly<Record<string, NodeErrorKind>> = {
  ECONNREFUSED: 'refused',
  ETIMEDOUT: 'timeout',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ABORT_ERR: 'aborted',
  EDEADLINE: 'stopped',
  EBADSIG: 'unsigned',
};

/** The kind of an error thrown by ControlClient (anything else is 'other'). */
export function nodeErrorKind(err: unknown): NodeErrorKind {
  if (err instanceof ControlError) {
    if (err.errno === 'EBADSIG') return 'unsigned';
    if (err.status === 401) return 'auth';
    if (err.status !== null) return 'http-error';
    return (err.errno && BY_ERRNO[err.errno]) || 'other';
  }
  if (err instanceof Error && err.name === 'AbortError') return 'aborted';
  return 'other';
}
