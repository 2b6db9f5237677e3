; Enum.into/2,3 whose collectable is an empty map, list or MapSet (piped or not; checked in Python).
(call
  target: (dot left: (alias) @module right: (identifier) @name)
  (arguments [(map) (list) (call)])
  (#eq? @module "Enum")
  (#eq? @name "into")) @finding
