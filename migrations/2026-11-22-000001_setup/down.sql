DROP FUNCTION IF EXISTS weft_manage_updated_at(regclass);
DROP FUNCTION IF EXISTS weft_set_updated_at();
