; Logger.warn in any shape: a call, a pipe step or a capture.
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (#eq? @module "Logger")
  (#eq? @name "warn")) @finding
