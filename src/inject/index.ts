export { renderSecret } from './render.js';
export { usesClock } from './template-eval.js';
export { applyPlacements, InvalidRendering, type Placement, type RequestParts } from './apply.js';
export { evaluateTemplate } from './template-eval.js';
export { createBodyRewriter, type BodySubstitution } from './body-stream.js';
