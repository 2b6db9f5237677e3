; Enum.reverse(a) ++ b where b is not a list literal (checked in Python).
(binary_operator
  left: (call target: (dot left: (alias) @module right: (identifier) @name))
  operator: "++"
  (#eq? @module "Enum")
  (#eq? @name "reverse")) @finding
