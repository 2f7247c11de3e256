/** Time is a parameter: use cases ask a Clock, tests pass a fixed one. */
export interface Clock {
  now(): Date;
}
