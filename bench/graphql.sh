# Sourced by the bench scripts: graphql DOCUMENT VARIABLES PATH posts a GraphQL request to $URL
# (with $TOKEN when set) and prints the value at the dotted JSON path, failing on any error.
graphql() {
  local token=${TOKEN:-}
  local body
  body=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "variables": json.loads(sys.argv[2])}))' "$1" "$2")
  curl -sS --fail-with-body "$URL/graphql" -H 'content-type: application/json' \
    ${token:+-H "authorization: Bearer $token"} -d "$body" |
    python3 -c '
import json, sys
answer = json.load(sys.stdin)
if answer.get("errors"):
    sys.exit("GraphQL error: " + json.dumps(answer["errors"]))
value = answer["data"]
for part in sys.argv[1].split("."):
    value = value[int(part)] if part.isdigit() else value[part]
print(value)' "$3"
}


# bench_login prints an access token for the bench account ($EMAIL, $PASSWORD of account.env).
bench_login() {
  local variables
  variables=$(python3 -c 'import json,sys; print(json.dumps({"i": {"email": sys.argv[1], "password": sys.argv[2]}}))' "$EMAIL" "$PASSWORD")
  TOKEN='' graphql 'mutation($i: LoginInput!) { login(input: $i) { accessToken } }' "$variables" login.accessToken
}
