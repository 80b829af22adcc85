// Recognising errors thrown by the native addon without importing it (so probers stay testable with fakes).
export function isNativeErrorLike(err: unknown): err is Error & { code: string; syscall: string } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && typeof (err as { syscall?: unknown }).syscall === 'string';
}
