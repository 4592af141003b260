/** The provider contract lives in core (the limiter consumes it); providers implement it. */
export type {
  BucketKind,
  BucketReading,
  BucketSpec,
  Provider,
  ResponseReading,
  RetrySource,
} from '../core/provider.js';
export type { CostLearner, LearnStart, LearningBucket } from '../core/costLearning.js';
