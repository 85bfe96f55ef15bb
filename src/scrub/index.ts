export { Scrubber, EchoBlocked, GrpcGuard, compileTargets, type ScrubTarget, type BodyScrub, type EchoTag } from './scrubber.js';
export { ScrubberCache } from './scrubber-cache.js';
export { scrubResponse, type ScrubbedResponse, type ResponseFacts } from './response.js';
export { UnreadableResponse } from './decoders.js';
export { valueForms, MIN_FORM_BYTES } from './echo-forms.js';
export { EchoMatcher, type EchoForm } from './echo-matcher.js';
