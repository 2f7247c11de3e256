import type { NextFunction, Request, Response } from 'express';

/**
 * The last middleware of a stand-in server (EHR, payer): a body that is not JSON (body-parser's
 * 4xx) is the client's `structure` error, anything else the stand-in's own `exception`, answered
 * as an OperationOutcome by `answer`. Express knows an error handler by its four parameters.
 */
export function standInFailureHandler(
  failed: string,
  answer: (res: Response, status: number, code: 'structure' | 'exception', diagnostics: string) => void,
): (err: unknown, req: Request, res: Response, next: NextFunction) => void {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' ? err.status : 500;
    answer(res, status, status < 500 ? 'structure' : 'exception', status < 500 ? 'The request body is not valid JSON' : failed);
  };
}
