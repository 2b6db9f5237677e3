; Enum.count(x) compared with 0 (either side; the integer's value is checked in Python).
(binary_operator
  left: (call target: (dot left: (alias) @module right: (identifier) @name))
  operator: ["==" "===" "!=" "!==" ">"]
  right: (integer)
  (#eq? @module "Enum")
  (#eq? @name "count")) @finding

(binary_operator
  left: (integer)
  operator: ["==" "===" "!=" "!==" "<"]
  right: (call target: (dot left: (alias) @module right: (identifier) @name))
  (#eq? @module "Enum")
  (#eq? @name "count")) @finding

; x |> ... |> Enum.count() == 0
(binary_operator
  left: (binary_operator
    operator: "|>"
    right: (call target: (dot left: (alias) @module right: (identifier) @name)))
  operator: ["==" "===" "!=" "!==" ">"]
  right: (integer)
  (#eq? @module "Enum")
  (#eq? @name "count")) @finding
