package api

// What the contract walk (contract_walk_test.go) reads the OpenAPI document with: the
// schema resolution CheckBody validates with, not a copy of it.

// SchemaDoc is the served OpenAPI document as CheckBody reads it.
type SchemaDoc struct{ b *bodySchemas }

// LoadSchemaDoc reads the served OpenAPI document.
func LoadSchemaDoc() (SchemaDoc, error) {
	raw, err := OpenAPI()
	if err != nil {
		return SchemaDoc{}, err
	}
	b, err := newBodySchemas(raw)
	return SchemaDoc{b}, err
}

// Root is the whole document.
func (d SchemaDoc) Root() map[string]any { return d.b.root }

// Get walks nested objects of m (nil when one is missing).
func (d SchemaDoc) Get(m map[string]any, keys ...string) map[string]any { return dig(m, keys...) }

// Flat resolves $ref and merges allOf.
func (d SchemaDoc) Flat(s map[string]any) map[string]any { return d.b.flat(s) }

// SchemaTypes lists the types a schema allows.
func SchemaTypes(s map[string]any) []string { return types(s) }
