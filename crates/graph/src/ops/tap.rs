//! Temporary Access Pass.

use crate::client::GraphClient;
use crate::error::GraphError;
use crate::model::{TapRequest, TemporaryAccessPass};
use latchkey_types::ObjectId;

impl GraphClient {
    /// `POST /users/{id}/authentication/temporaryAccessPassMethods`. The pass is in the answer
    /// only this once ([`TemporaryAccessPass::pass`], a `Secret`); creating one while another is
    /// valid replaces it (Graph's rule). `lifetime_in_minutes` must be 10–43200.
    pub async fn create_temporary_access_pass(
        &self,
        id: &ObjectId,
        req: &TapRequest,
    ) -> Result<TemporaryAccessPass, GraphError> {
        if let Some(m) = req.lifetime_in_minutes
            && !(10..=43200).contains(&m)
        {
            return Err(GraphError::InvalidInput(
                "lifetimeInMinutes must be between 10 and 43200".into(),
            ));
        }
        let user = id.to_string();
        let url = self.url(&[
            "users",
            &user,
            "authentication",
            "temporaryAccessPassMethods",
        ]);
        let resp = self.post_json(url, req.to_json(), false).await?;
        resp.json()
    }
}
